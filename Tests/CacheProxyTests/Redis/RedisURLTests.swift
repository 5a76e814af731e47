import Testing
@testable import CacheProxy

@Suite struct RedisURLTests {
    @Test func parsesHostPortAndDatabase() throws {
        let url = try RedisURL(parsing: "redis://127.0.0.1:6380/2")
        #expect(url == RedisURL(host: "127.0.0.1", port: 6380, database: 2))
    }

    @Test func defaultsPortAndDatabase() throws {
        #expect(try RedisURL(parsing: "redis://localhost") == RedisURL(host: "localhost", port: 6379, database: 0))
        #expect(try RedisURL(parsing: "redis://localhost/") == RedisURL(host: "localhost"))
    }

    @Test func parsesUserAndPassword() throws {
        let url = try RedisURL(parsing: "redis://alice:s%40cret@redis.internal:7000/1")
        #expect(url.username == "alice")
        #expect(url.password == "s@cret")
        #expect(url.host == "redis.internal")
        #expect(url.port == 7000)
        #expect(url.database == 1)
    }

    @Test func parsesPasswordWithoutUser() throws {
        let url = try RedisURL(parsing: "redis://:secret@127.0.0.1:6379")
        #expect(url.username == nil)
        #expect(url.password == "secret")
    }

    @Test func parsesIPv6() throws {
        let url = try RedisURL(parsing: "redis://[::1]:6390/0")
        #expect(url.host == "::1")
        #expect(url.port == 6390)
        #expect(url.description == "redis://[::1]:6390/0")
    }

    @Test func descriptionMasksPassword() throws {
        let url = try RedisURL(parsing: "redis://bob:hunter2@h:1/3")
        #expect(url.description == "redis://bob:***@h:1/3")
        #expect(!url.description.contains("hunter2"))
    }

    @Test(arguments: [
        ("http://127.0.0.1:6379", "must start with \"redis://\""),
        ("redis://", "the host is missing"),
        ("redis://:6379", "the host is missing"),
        ("redis://127.0.0.1:abc", "port \"abc\" is not a number"),
        ("redis://127.0.0.1:70000", "port \"70000\" is not a number"),
        ("redis://127.0.0.1:6379/x", "database \"x\" is not a non-negative integer"),
        ("redis://127.0.0.1:6379/-1", "database \"-1\""),
        ("redis://[::1:6379", "closing \"]\""),
        ("redis://:pa%zzword@h:1", "bad percent-encoding"),
    ])
    func rejectsMalformedURLs(input: String, reason: String) {
        let error = #expect(throws: RedisURLError.self) { try RedisURL(parsing: input) }
        #expect(error?.reason.contains(reason) == true, "\(String(describing: error))")
        #expect(error?.description.contains("redis://[[user]:password@]host:port[/db]") == true)
    }

    @Test func errorMasksPassword() {
        let error = #expect(throws: RedisURLError.self) { try RedisURL(parsing: "redis://u:topsecret@h:notaport") }
        #expect(error?.description.contains("topsecret") == false)
        #expect(error?.description.contains("u:***@h") == true)
    }
}
