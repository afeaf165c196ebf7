/// The error type Conclave's modules throw: a code callers switch on, a message that is safe to
/// show a client, and context for the logs.
public struct ConclaveError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, coarse enough to map onto an HTTP status.
    public enum Code: String, Sendable, Hashable {
        /// The request is malformed or violates a limit.
        case invalidRequest = "invalid_request"
        /// The requested model (workflow) does not exist.
        case modelNotFound = "model_not_found"
        /// A conversation or other named resource does not exist.
        case notFound = "not_found"
        /// A workflow definition is invalid.
        case invalidWorkflow = "invalid_workflow"
        /// Configuration is invalid.
        case invalidConfiguration = "invalid_configuration"
        /// No healthy model backend can take the call.
        case modelUnavailable = "model_unavailable"
        /// A service the request needs besides the model (the agent bus in distributed mode) is
        /// unreachable.
        case unavailable = "service_unavailable"
        /// The model backend answered with an error or unusable output.
        case modelFailed = "model_failed"
        /// A step or call ran past its deadline.
        case timeout = "timeout"
        /// The work was cancelled (client gone, shutdown).
        case cancelled = "cancelled"
        /// The request body is larger than allowed.
        case payloadTooLarge = "payload_too_large"
        /// The caller's credential is missing or invalid.
        case unauthorized = "unauthorized"
        /// The caller is authenticated but not permitted to do this.
        case forbidden = "forbidden"
        /// The client did not send its request (body) in time.
        case requestTimeout = "request_timeout"
        /// A rate limit or token quota is exhausted; ``ConclaveError/retryAfterSeconds`` says when to retry.
        case rateLimited = "rate_limit_exceeded"
        /// A storage operation failed.
        case storage = "storage_error"
        /// Ingestion of a source failed.
        case ingestion = "ingestion_error"
        /// An invariant broke; details are in the context, never sent to clients.
        case `internal` = "internal_error"
    }

    /// The error code.
    public var code: Code
    /// A message that is safe to return to a client.
    public var message: String
    /// Extra detail for logs (may contain internals).
    public var context: String?
    /// The request parameter at fault, where there is one.
    public var parameter: String?
    /// Seconds before a retry can succeed (`Retry-After`), for `rateLimited`.
    public var retryAfterSeconds: Int?

    /// Creates an error.
    public init(_ code: Code, _ message: String, context: String? = nil, parameter: String? = nil, retryAfterSeconds: Int? = nil) {
        self.code = code
        self.message = message
        self.context = context
        self.parameter = parameter
        self.retryAfterSeconds = retryAfterSeconds
    }

    public var description: String {
        var text = "\(code.rawValue): \(message)"
        if let context { text += " (\(context))" }
        return text
    }
}
