import Foundation

/// Waits (bounded by `seconds`) until `condition` holds; returns whether it did.
@discardableResult
func waitUntil(_ seconds: Double = 5, _ condition: () -> Bool) async throws -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while !condition(), Date() < deadline { try await Task.sleep(for: .milliseconds(5)) }
    return condition()
}
