import Synchronization

/// The base URLs of the model replicas that are ready to take calls.
///
/// The supervisor adds a replica when its `/health` answers and removes it when it dies; the
/// provider reads the set on every call. (The inference issue grows this into a balancing pool.)
public final class ReplicaSet: Sendable {
    private let urls: Mutex<[String]>

    /// Creates a set with the given ready base URLs (each ending in `/v1`).
    public init(_ urls: [String] = []) {
        self.urls = Mutex(urls)
    }

    /// The ready base URLs.
    public var ready: [String] { urls.withLock { $0 } }

    /// Marks a replica ready.
    public func add(_ url: String) {
        urls.withLock { if !$0.contains(url) { $0.append(url) } }
    }

    /// Marks a replica gone.
    public func remove(_ url: String) {
        urls.withLock { $0.removeAll { $0 == url } }
    }

    /// A ready replica, or nil when there is none.
    public func pick() -> String? {
        urls.withLock { $0.randomElement() }
    }
}
