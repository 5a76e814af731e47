import Testing
@testable import CacheProxy

@Suite struct PathPatternTests {
    @Test(arguments: [
        ("/user/show_all_user/", "/user/show_all_user/", true),
        ("/user/show_all_user/", "/user/show_all_user", false),
        ("/user/show_all_user/", "/user/show_all_user/x", false),
        ("/order/*", "/order/12", true),
        ("/order/*", "/order/", false),
        ("/order/*", "/order/12/items", false),
        ("/order/*/items", "/order/12/items", true),
        ("/order/**", "/order", true),
        ("/order/**", "/order/", true),
        ("/order/**", "/order/a/b/c", true),
        ("/order/**", "/orders", false),
        ("/**", "/anything/at/all", true),
        ("/", "/", true),
        ("/", "/x", false),
        ("/a", "/A", false),
    ])
    func matches(pattern: String, path: String, expected: Bool) throws {
        #expect(try PathPattern(pattern).matches(Substring(path)) == expected)
    }

    @Test(arguments: ["order", "/a/**/b", "/a/b*", "/a//b", "/a?x=1", "/a b"])
    func rejects(pattern: String) {
        #expect(throws: PathPatternError.self) { try PathPattern(pattern) }
    }
}
