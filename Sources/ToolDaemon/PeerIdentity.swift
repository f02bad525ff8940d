import CSystemd
import Foundation
import ToolEngine
import ToolProtocol

/// Resolves a peer's kernel credentials (SO_PEERCRED) into the identity every handler receives.
enum PeerIdentity {
    /// Names the peer and its groups. `groups` is the kernel's list (SO_PEERGROUPS) when available: the
    /// groups the connecting process really has, not what the user database says it could have.
    /// Runs NSS lookups, which may block: call it on a `BlockingThreads.lookups` thread.
    static func resolve(uid: uid_t, gid: gid_t, pid: pid_t, groups: [gid_t]?, adminGroup: String) -> CallerIdentity {
        let name = UserDatabase.userName(uid)
        var gids = groups ?? name.map { UserDatabase.groups(user: $0, gid: gid) } ?? []
        gids.removeAll { $0 == gid }
        gids.insert(gid, at: 0)
        let groupNames = gids.map { UserDatabase.groupName($0) ?? String($0) }
        let admin = uid == 0 || groupNames.contains(adminGroup)
        return CallerIdentity(uid: uid, gid: gid, pid: pid, user: name ?? String(uid), groups: groupNames, admin: admin)
    }

    /// Reads the fixed-size SO_PEERGROUPS buffer. The kernel fills it with the groups sorted ascending and
    /// the rest stays zero, so the list ends where the ascending run breaks. A lone group 0 cannot be told
    /// from an empty list and is left out (conservative: it never grants anything).
    static func groups(fromKernel raw: toold_peer_groups) -> [gid_t] {
        withUnsafeBytes(of: raw.gids) { bytes in
            let all = bytes.bindMemory(to: gid_t.self)
            var result: [gid_t] = []
            for (index, g) in all.enumerated() {
                if index > 0 && g <= all[index - 1] { break }
                if index == 0 && g == 0 && (all.count < 2 || all[1] == 0) { break }
                result.append(g)
            }
            return result
        }
    }
}
