import Foundation

/// Lookups in the user database (NSS: files, LDAP, …). They can block on a slow directory service: while
/// serving, call them on `BlockingThreads.lookups` (neither an event loop nor the cooperative pool).
public enum UserDatabase {
    /// The groups the user database gives a user (primary included).
    public static func groups(user: String, gid: gid_t) -> [gid_t] {
        var count: Int32 = 64
        var list = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(user, gid, &list, &count) == -1 {
            list = [gid_t](repeating: 0, count: Int(count))
            _ = getgrouplist(user, gid, &list, &count)
        }
        return Array(list.prefix(Int(max(count, 0))))
    }

    public static func userName(_ uid: uid_t) -> String? { passwdEntry(uid)?.name }

    public static func groupName(_ gid: gid_t) -> String? {
        var grp = group()
        var result: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getgrgid_r(gid, &grp, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return String(cString: grp.gr_name)
    }

    public static func groupID(_ name: String) -> gid_t? {
        var grp = group()
        var result: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getgrnam_r(name, &grp, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return grp.gr_gid
    }

    /// A user's uid by name.
    public static func userID(_ name: String) -> uid_t? {
        var pwd = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getpwnam_r(name, &pwd, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return pwd.pw_uid
    }

    /// A user's primary gid.
    public static func primaryGroup(_ uid: uid_t) -> gid_t? { passwdEntry(uid)?.gid }

    private static func passwdEntry(_ uid: uid_t) -> (name: String, gid: gid_t)? {
        var pwd = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getpwuid_r(uid, &pwd, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return (String(cString: pwd.pw_name), pwd.pw_gid)
    }
}
