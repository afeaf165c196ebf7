#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A test double of a backend that does not accept connections: a loopback socket that listens
/// with a backlog of one and never calls `accept`, its queue filled by two idle connections, so
/// a further connection attempt hangs in the handshake (the SYN is dropped) until the client's
/// connect timeout.
public final class UnacceptingListener: Sendable {
    /// Base URL (ending in `/v1`).
    public let url: String
    private let descriptors: [Int32]

    /// Opens the listener and fills its queue.
    public init() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw ListenerError(message: "socket() failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) }
        }
        guard bound == 0, listen(listener, 0) == 0 else {
            close(listener)
            throw ListenerError(message: "bind/listen failed")
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        let port = Int(UInt16(bigEndian: address.sin_port))
        var opened = [listener]
        // Two connections fill a backlog of 0 (the kernel admits backlog + 1); later SYNs are dropped.
        for _ in 0..<2 {
            let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            let flags = fcntl(client, F_GETFL, 0)
            _ = fcntl(client, F_SETFL, flags | O_NONBLOCK)
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            opened.append(client)
        }
        usleep(50_000)
        descriptors = opened
        url = "http://127.0.0.1:\(port)/v1"
    }

    /// Closes every socket.
    public func stop() {
        for descriptor in descriptors { _ = close(descriptor) }
    }

    deinit { stop() }

    struct ListenerError: Error { var message: String }
}
