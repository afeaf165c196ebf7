/// The authenticated caller of a request: who they are and what they may see.
///
/// The core slice runs without authentication, so requests are served as ``Principal/anonymous``;
/// the governance layer fills these fields from a verified token.
public struct Principal: Sendable, Codable, Hashable {
    /// Stable user id, for example `u-employee`.
    public var userID: String
    /// Tenant the user belongs to.
    public var tenant: String
    /// Role names granted to the user.
    public var roles: [String]
    /// The user's department, if any.
    public var department: String?
    /// Highest document classification the user is cleared for.
    public var clearance: String?

    /// Creates a principal.
    public init(userID: String, tenant: String = "default", roles: [String] = [], department: String? = nil,
                clearance: String? = nil) {
        self.userID = userID
        self.tenant = tenant
        self.roles = roles
        self.department = department
        self.clearance = clearance
    }

    /// The principal used when authentication is off.
    public static let anonymous = Principal(userID: "anonymous")
}
