import ConclaveCore
import HTTPTypes
import Hummingbird

/// An error response in OpenAI's shape: `{"error":{"message","type","code","param"}}`.
public struct OpenAIError: Error, Sendable, Codable {
    public struct Body: Sendable, Codable {
        public var message: String
        public var type: String
        public var code: String?
        public var param: String?

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(message, forKey: .message)
            try c.encode(type, forKey: .type)
            try c.encode(code, forKey: .code)
            try c.encode(param, forKey: .param)
        }
        enum CodingKeys: String, CodingKey { case message, type, code, param }
    }

    public var error: Body

    /// The HTTP status that goes with it (not encoded).
    public var status: HTTPResponse.Status { _status.map { HTTPResponse.Status(code: $0) } ?? .internalServerError }
    private var _status: Int?
    /// Seconds a client should wait before retrying, for 503s.
    public var retryAfter: Int?

    enum CodingKeys: String, CodingKey { case error }

    public init(status: HTTPResponse.Status, message: String, type: String, code: String?, param: String? = nil,
                retryAfter: Int? = nil) {
        self.error = Body(message: message, type: type, code: code, param: param)
        self._status = status.code
        self.retryAfter = retryAfter
    }

    /// The one mapping from internal errors to client errors. Internals never reach the client.
    public static func from(_ error: any Error) -> OpenAIError {
        if let error = error as? OpenAIError { return error }
        if let error = error as? ConclaveError {
            switch error.code {
            case .invalidRequest:
                return OpenAIError(status: .badRequest, message: error.message, type: "invalid_request_error",
                                   code: "invalid_request", param: error.parameter)
            case .modelNotFound:
                return OpenAIError(status: .notFound, message: error.message, type: "invalid_request_error",
                                   code: "model_not_found", param: "model")
            case .notFound:
                return OpenAIError(status: .notFound, message: error.message, type: "invalid_request_error",
                                   code: "not_found", param: error.parameter)
            case .unauthorized:
                // Never say why: a client learns nothing about keys, claims or clocks.
                return OpenAIError(status: .unauthorized, message: "Invalid token.", type: "invalid_request_error",
                                   code: "invalid_api_key")
            case .forbidden:
                return OpenAIError(status: .forbidden, message: error.message, type: "permission_error",
                                   code: "forbidden", param: error.parameter)
            case .requestTimeout:
                return OpenAIError(status: .requestTimeout, message: error.message, type: "invalid_request_error", code: "request_timeout")
            case .rateLimited:
                // OpenAI's shape and code for rate limits; the SDKs raise RateLimitError and honour Retry-After.
                return OpenAIError(status: .tooManyRequests, message: error.message, type: "requests", code: "rate_limit_exceeded",
                                   retryAfter: max(1, error.retryAfterSeconds ?? 1))
            case .payloadTooLarge:
                return OpenAIError(status: .contentTooLarge, message: error.message, type: "invalid_request_error",
                                   code: "payload_too_large")
            case .modelUnavailable:
                return OpenAIError(status: .serviceUnavailable, message: "No healthy model backend is available; retry shortly.",
                                   type: "server_error", code: "model_unavailable", retryAfter: 5)
            case .unavailable:
                return OpenAIError(status: .serviceUnavailable, message: "A service the request needs is unavailable; retry shortly.",
                                   type: "server_error", code: "service_unavailable", retryAfter: 5)
            case .timeout:
                return OpenAIError(status: .gatewayTimeout, message: "The request took too long to complete.",
                                   type: "server_error", code: "timeout")
            case .modelFailed:
                return OpenAIError(status: .badGateway, message: "The model backend returned an unusable response.",
                                   type: "server_error", code: "model_error")
            case .cancelled:
                return OpenAIError(status: .serviceUnavailable, message: "The request was cancelled.", type: "server_error",
                                   code: "cancelled", retryAfter: 1)
            case .invalidWorkflow, .invalidConfiguration, .storage, .ingestion, .internal:
                return OpenAIError(status: .internalServerError, message: "The server failed to process the request.",
                                   type: "server_error", code: "internal_error")
            }
        }
        if let error = error as? any HTTPResponseError {
            switch error.status {
            case .contentTooLarge:
                return OpenAIError(status: .contentTooLarge, message: "The request body is larger than the server accepts.",
                                   type: "invalid_request_error", code: "payload_too_large")
            case .notFound:
                return OpenAIError(status: .notFound, message: "Unknown path.", type: "invalid_request_error", code: "not_found")
            case .methodNotAllowed:
                return OpenAIError(status: .methodNotAllowed, message: "Method not allowed for this path.",
                                   type: "invalid_request_error", code: "method_not_allowed")
            default:
                let status = error.status
                let type = status.code < 500 ? "invalid_request_error" : "server_error"
                return OpenAIError(status: status, message: status.reasonPhrase, type: type, code: nil)
            }
        }
        if error is CancellationError {
            return OpenAIError(status: .serviceUnavailable, message: "The request was cancelled.", type: "server_error",
                               code: "cancelled", retryAfter: 1)
        }
        return OpenAIError(status: .internalServerError, message: "The server failed to process the request.",
                           type: "server_error", code: "internal_error")
    }
}
