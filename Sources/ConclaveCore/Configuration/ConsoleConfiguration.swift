/// The web console (`console`): served by the gateway at `/console` from assets compiled into the
/// binary. Every call it makes goes through the public API with the signed-in user's token.
public struct ConsoleConfiguration: Sendable, Codable, Hashable {
    /// Serve `/console`. Default true.
    public var enabled: Bool
    /// Directory holding evaluation reports (`reports/<timestamp>/` from `make study` and
    /// `conclave eval --output`), listed by `GET /v1/evaluations`. Default `reports`.
    public var reportsDirectory: String

    /// Creates console settings.
    public init(enabled: Bool = true, reportsDirectory: String = "reports") {
        self.enabled = enabled
        self.reportsDirectory = reportsDirectory
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case enabled
        case reportsDirectory = "reports_dir"
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let d = ConsoleConfiguration()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        enabled = try c.value(.enabled, default: d.enabled)
        reportsDirectory = try c.value(.reportsDirectory, default: d.reportsDirectory)
    }

    func validate() throws {
        guard !reportsDirectory.isEmpty else {
            throw ConfigurationError(key: "console.reports_dir", value: reportsDirectory, expected: "a directory path")
        }
    }
}
