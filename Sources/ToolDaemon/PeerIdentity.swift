import CSystemd
import Foundation
import ToolProtocol

/// Resolves a peer's kernel credentials (SO_PEERCRED) into the identity every handler receives.
enum PeerIdentity {
    /// Names the peer and its groups. `groups` is the kernel's list (SO_PEERGROUPS) when available: the
    /// groups the connecting process really has, not what the user database says it could have.
    /// Runs NSS lookups: call it off the event loop.
    static func resolve(uid: uid_t, gid: gid_t, pid: pid_t, groups: [gid_t]?, adminGroup: String) -> CallerIdentity {
        let name = userName(uid)
        var gids = groups ?? name.map { databaseGroups(user: $0, gid: gid) } ?? []
        gids.removeAll { $0 == gid }
        gids.insert(gid, at: 0)
        let groupNames = gids.map { groupName($0) ?? String($0) }
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

    static func databaseGroups(user: String, gid: gid_t) -> [gid_t] {
        var count: Int32 = 64
        var list = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(user, gid, &list, &count) == -1 {
            list = [gid_t](repeating: 0, count: Int(count))
            _ = getgrouplist(user, gid, &list, &count)
        }
        return Array(list.prefix(Int(max(count, 0))))
    }

    static func userName(_ uid: uid_t) -> String? {
        var pwd = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getpwuid_r(uid, &pwd, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return String(cString: pwd.pw_name)
    }

    static func groupName(_ gid: gid_t) -> String? {
        var grp = group()
        var result: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getgrgid_r(gid, &grp, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return String(cString: grp.gr_name)
    }

    static func groupID(_ name: String) -> gid_t? {
        var grp = group()
        var result: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getgrnam_r(name, &grp, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return grp.gr_gid
    }
}
