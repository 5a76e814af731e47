import Crypto

/// Checks `Authorization: Bearer <token>` in constant time: both sides are hashed to 32 bytes
/// and compared without an early exit, so the time taken says nothing about how much of a
/// guess was right (nor its length).
enum AdminToken {
    static func matches(_ authorization: String?, token: String) -> Bool {
        guard let authorization else { return false }
        let scheme = "bearer "
        guard authorization.count > scheme.count, authorization.prefix(scheme.count).lowercased() == scheme else { return false }
        let given = authorization.dropFirst(scheme.count).drop(while: { $0 == " " })
        let lhs = Array(SHA256.hash(data: Array(given.utf8)))
        let rhs = Array(SHA256.hash(data: Array(token.utf8)))
        var difference: UInt8 = 0
        for index in 0..<lhs.count { difference |= lhs[index] ^ rhs[index] }
        return difference == 0
    }
}
