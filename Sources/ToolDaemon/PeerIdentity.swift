import Foundation
import ToolProtocol

/// Resolves a peer's kernel credentials (SO_PEERCRED) into the identity every handler receives.
enum PeerIdentity {
    /// Looks up user and group names; a uid without a passwd entry is named by its number.
    /// Runs NSS lookups: call it off the event loop.
    static func resolve(uid: uid_t, gid: gid_t, pid: pid_t, adminGroup: String) -> CallerIdentity {
        let user = userName(uid) ?? String(uid)
        var gids: [gid_t] = [gid]
        if let name = userName(uid) {
            var count: Int32 = 64
            var list = [gid_t](repeating: 0, count: Int(count))
            if getgrouplist(name, gid, &list, &count) == -1 {
                list = [gid_t](repeating: 0, count: Int(count))
                _ = getgrouplist(name, gid, &list, &count)
            }
            gids = Array(list.prefix(Int(max(count, 0))))
            if !gids.contains(gid) { gids.insert(gid, at: 0) }
        }
        let groupNames = gids.map { groupName($0) ?? String($0) }
        let admin = uid == 0 || groupNames.contains(adminGroup)
        return CallerIdentity(uid: uid, gid: gid, pid: pid, user: user, groups: groupNames, admin: admin)
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
