import AsyncHTTPClient
import Logging
import ServiceLifecycle

/// Active health checks of a pool's replicas: every `interval` each replica's health URL (its
/// base URL without `/v1`, plus `path`, e.g. `/health`) is fetched; `failureThreshold` failures in
/// a row (no answer within `timeout`, or a 5xx) take the replica out of rotation, and one success
/// puts it back. Passive checks (the breakers) work from real calls;
/// these catch a replica that is down before a call finds out, and one that came back.
public struct HealthChecker: Service {
    /// The pool whose replicas are checked.
    public let pool: ReplicaPool
    /// Path of the health route, relative to the host.
    public let path: String
    /// Time between rounds.
    public let interval: Duration
    /// Longest wait for one check.
    public let timeout: Duration
    /// Failed checks in a row that mark a replica unhealthy.
    public let failureThreshold: Int
    private let client: HTTPClient
    private let logger: Logger

    /// Creates a checker.
    public init(pool: ReplicaPool, path: String = "/health", interval: Duration = .seconds(5), timeout: Duration = .seconds(2),
                failureThreshold: Int = 3, client: HTTPClient = InferenceHTTPClient.shared(connectTimeout: .seconds(2)),
                logger: Logger = Logger(label: "conclave.inference")) {
        self.pool = pool
        self.path = path
        self.interval = interval
        self.timeout = timeout
        self.failureThreshold = failureThreshold
        self.client = client
        self.logger = logger
    }

    /// The health URL of a replica's base URL.
    public static func healthURL(base: String, path: String) -> String {
        var root = base
        while root.hasSuffix("/") { root.removeLast() }
        if root.hasSuffix("/v1") { root.removeLast(3) }
        return root + path
    }

    /// Checks until shutdown.
    public func run() async throws {
        var failures: [String: Int] = [:]
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let urls = pool.status.map(\.url)
            let results = await withTaskGroup(of: (String, Bool).self) { group in
                for url in urls {
                    group.addTask { (url, await isHealthy(url)) }
                }
                var results: [(String, Bool)] = []
                for await result in group { results.append(result) }
                return results
            }
            failures = failures.filter { urls.contains($0.key) }
            for (url, healthy) in results {
                if healthy {
                    if failures[url, default: 0] >= failureThreshold {
                        logger.notice("replica healthy again", metadata: ["model": "\(pool.model)", "replica": "\(url)"])
                    }
                    failures[url] = 0
                    pool.setHealth(url, healthy: true)
                } else {
                    failures[url, default: 0] += 1
                    if failures[url] == failureThreshold {
                        logger.warning("replica failed its health checks; out of rotation", metadata: [
                            "model": "\(pool.model)", "replica": "\(url)", "checks": "\(failureThreshold)",
                        ])
                        pool.setHealth(url, healthy: false)
                    }
                }
            }
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
        }
    }

    /// One check of the replica at `base`.
    public func isHealthy(_ base: String) async -> Bool {
        var request = HTTPClientRequest(url: Self.healthURL(base: base, path: path))
        request.method = .GET
        guard let response = try? await client.execute(request, timeout: .milliseconds(timeout.inMilliseconds)) else {
            return false
        }
        _ = try? await response.body.collect(upTo: 64 * 1024)
        // Any answer below 500 means the server is up: a hosted API without a health route
        // answers 404 or 401. A 5xx (llama.cpp answers 503 while it loads the model) or no answer
        // is a failed check.
        return response.status.code < 500
    }
}
