import ConclaveCore
import ConclaveGovernance
import Foundation
import Testing

/// Every rule of examples/meridian/identities/access-policy.md, checked against the encoding in
/// config/policies/meridian.yaml.
@Suite struct MeridianPolicyTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let pdp: PolicyDecisionPoint

    init() throws {
        pdp = PolicyDecisionPoint(policy: try AccessPolicy.load(path: Self.root.appendingPathComponent("config/policies/meridian.yaml").path))
    }

    static func user(_ role: String, _ department: String?) -> Principal {
        Principal(userID: "u-\(role)", tenant: "meridian", roles: [role], department: department)
    }

    // Labels as in the documents' front matter.
    static let documents: [DocumentLabel] = [
        ("GEN-001", "public", "general"), ("HR-007", "public", "hr"), ("OPS-001", "public", "operations"),
        ("HR-001", "internal", "hr"), ("ENG-001", "internal", "engineering"), ("FIN-001", "internal", "finance"),
        ("IT-001", "internal", "it"), ("OPS-002", "internal", "operations"), ("SEC-001", "internal", "security"),
        ("LEG-001", "internal", "legal"), ("ENG-004", "confidential", "engineering"), ("EXEC-001", "confidential", "exec"),
        ("FIN-005", "confidential", "finance"), ("SAL-001", "confidential", "sales"), ("SAL-003", "confidential", "sales"),
        ("EXEC-002", "restricted", "exec"), ("HR-009", "restricted", "hr"), ("SEC-005", "restricted", "security"),
    ].map { DocumentLabel(id: $0.0, classification: $0.1, department: $0.2) }

    static let publicDocs: Set<String> = ["GEN-001", "HR-007", "OPS-001"]
    static let internalDocs: Set<String> = ["HR-001", "ENG-001", "FIN-001", "IT-001", "OPS-002", "SEC-001", "LEG-001"]
    static let everyone = publicDocs.union(internalDocs)

    /// §3.1 matrix, §3.2 grants and §3.3 consequences.
    @Test(arguments: [
        ("employee", "operations", everyone),
        ("manager", "operations", everyone),
        ("manager", "engineering", everyone.union(["ENG-004"])),
        ("hr", "hr", everyone.union(["HR-009", "EXEC-002", "SAL-003"])),
        ("finance", "finance", everyone.union(["FIN-005", "SAL-001", "SAL-003"])),
        ("engineer", "engineering", everyone.union(["ENG-004"])),
        ("support", "support", everyone),
        ("sales", "sales", everyone.union(["SAL-001", "SAL-003"])),
        ("contractor", "engineering", publicDocs.union(["ENG-001"])),
        ("auditor", "audit", everyone.union(["ENG-004", "FIN-005", "SAL-001", "SAL-003"])),
        ("executive", "exec", Set(documents.map(\.id))),
        ("admin", "it", everyone.union(["SEC-005"])),
    ] as [(String, String, Set<String>)])
    func documentAccess(role: String, department: String, readable: Set<String>) {
        let principal = Self.user(role, department)
        for document in Self.documents {
            let decision = pdp.document(document, for: principal)
            #expect(decision.allowed == readable.contains(document.id), "\(role)/\(department) \(document.id): \(decision)")
        }
        #expect(pdp.documentScope(for: principal, documents: Self.documents).allowedDocumentIDs == readable)
    }

    @Test func grantsAreNamedInTheDecision() {
        #expect(pdp.document(Self.documents.first { $0.id == "EXEC-002" }!, for: Self.user("hr", "hr")).rule == "documents.grants.G1")
        #expect(pdp.document(Self.documents.first { $0.id == "SAL-001" }!, for: Self.user("finance", "finance")).rule == "documents.grants.G2")
        #expect(pdp.document(Self.documents.first { $0.id == "SAL-003" }!, for: Self.user("hr", "hr")).rule == "documents.grants.G3")
        let denied = pdp.document(Self.documents.first { $0.id == "EXEC-001" }!, for: Self.user("auditor", "audit"))
        #expect(!denied.allowed && denied.rule == "default-deny")
    }

    @Test func anUnlabelledDocumentOrARolelessPrincipalIsDenied() {
        #expect(!pdp.document(DocumentLabel(id: "X", classification: nil, department: "hr"), for: Self.user("manager", "hr")).allowed)
        #expect(!pdp.document(Self.documents[0], for: Principal(userID: "nobody")).allowed)
    }

    /// §4.1 tables.
    @Test(arguments: [
        ("employee", ["employees", "customers", "shipments", "warehouses"]),
        ("manager", ["employees", "customers", "shipments", "warehouses", "tickets"]),
        ("hr", ["employees", "customers", "shipments", "warehouses"]),
        ("finance", ["employees", "customers", "shipments", "warehouses", "invoices"]),
        ("engineer", ["employees", "customers", "shipments", "warehouses", "tickets"]),
        ("support", ["employees", "customers", "shipments", "warehouses", "tickets"]),
        ("sales", ["employees", "customers", "shipments", "warehouses", "invoices", "tickets"]),
        ("contractor", ["shipments", "warehouses"]),
        ("auditor", ["employees", "customers", "shipments", "warehouses", "invoices", "tickets"]),
        ("executive", ["employees", "customers", "shipments", "warehouses", "invoices", "tickets"]),
        ("admin", ["employees", "customers", "shipments", "warehouses"]),
    ])
    func tableAccess(role: String, tables: [String]) {
        for table in ["employees", "customers", "shipments", "warehouses", "invoices", "tickets"] {
            #expect(pdp.table(table, for: Self.user(role, nil)).allowed == tables.contains(table), "\(role) \(table)")
        }
        #expect(!pdp.table("payroll", for: Self.user(role, nil)).allowed)
    }

    /// §4.2 sensitive columns.
    @Test func sensitiveColumns() {
        func access(_ role: String, _ table: String, _ column: String) -> FieldAccess {
            pdp.column(table, column, for: Self.user(role, nil))
        }
        for role in ["hr", "executive"] {
            #expect(access(role, "employees", "salary_eur") == .unmasked)
            #expect(access(role, "employees", "national_id") == .unmasked)
        }
        for role in ["employee", "manager", "finance", "engineer", "support", "sales", "auditor", "admin"] {
            #expect(access(role, "employees", "salary_eur") == .denied, "\(role)")
            #expect(access(role, "employees", "national_id") == .denied, "\(role)")
        }
        for role in ["hr", "executive", "engineer"] { #expect(access(role, "employees", "phone") == .unmasked) }
        for role in ["employee", "manager", "finance", "support", "sales", "auditor", "admin"] {
            #expect(access(role, "employees", "phone") == .masked(.lastTwo), "\(role)")
        }
        for role in ["employee", "finance", "auditor"] { #expect(access(role, "employees", "email") == .unmasked) }
        for role in ["sales", "finance", "auditor", "executive"] { #expect(access(role, "customers", "annual_contract_eur") == .unmasked) }
        for role in ["employee", "manager", "hr", "engineer", "support", "admin"] {
            #expect(access(role, "customers", "annual_contract_eur") == .denied, "\(role)")
        }
        // No table access means no column access either.
        #expect(access("contractor", "employees", "email") == .denied)
    }

    /// §5 PII masking.
    @Test func piiVisibility() {
        func access(_ type: String, _ role: String) -> FieldAccess { pdp.pii(type, for: Self.user(role, nil)) }
        #expect(access("email", "employee") == .unmasked)
        #expect(access("email", "contractor") == .masked(.partial))
        #expect(access("phone", "engineer") == .unmasked)
        #expect(access("phone", "support") == .masked(.lastTwo))
        #expect(access("salary", "executive") == .unmasked)
        #expect(access("salary", "finance") == .masked(.restricted))
        #expect(access("national_id", "hr") == .unmasked)
        for type in ["iban", "date_of_birth", "private_contact"] {
            #expect(access(type, "hr") == .unmasked)
            #expect(access(type, "executive") == .masked(.restricted), "an executive sees \(type) masked")
        }
        #expect(access("unknown_type", "executive") == .masked(.restricted))
    }

    /// §6 Fleet & Tracking API.
    @Test func apiOperations() {
        let tracking = "GET /shipments/{id}/tracking"
        for role in ["employee", "manager", "finance", "engineer", "support", "sales", "auditor", "executive", "admin"] {
            #expect(pdp.apiOperation(tracking, for: Self.user(role, nil)).allowed, "\(role)")
        }
        for role in ["hr", "contractor"] { #expect(!pdp.apiOperation(tracking, for: Self.user(role, nil)).allowed, "\(role)") }
        for operation in ["GET /vehicles", "GET /vehicles/{id}"] {
            for role in ["manager", "engineer", "support", "executive", "admin"] {
                #expect(pdp.apiOperation(operation, for: Self.user(role, nil)).allowed)
            }
            for role in ["employee", "hr", "finance", "sales", "contractor", "auditor"] {
                #expect(!pdp.apiOperation(operation, for: Self.user(role, nil)).allowed, "\(role) \(operation)")
            }
        }
        #expect(pdp.apiOperation("GET /hubs/{code}/status", for: Self.user("hr", nil)).allowed)
        #expect(!pdp.apiOperation("GET /hubs/{code}/status", for: Self.user("contractor", nil)).allowed)
        #expect(!pdp.apiOperation("DELETE /vehicles/{id}", for: Self.user("executive", nil)).allowed)
    }

    @Test func everyRoleMayRunEveryWorkflowButARolelessPrincipalMayNot() {
        #expect(pdp.workflow("full", for: Self.user("contractor", "engineering")).allowed)
        #expect(!pdp.workflow("full", for: Principal(userID: "x")).allowed)
    }

    @Test func policyWithAnUndeclaredRoleIsRejected() {
        #expect(throws: ConfigurationError.self) {
            try AccessPolicy.load(yaml: """
                roles: [employee]
                documents:
                  matrix:
                    employe: {public: ["*"]}
                """)
        }
        #expect(throws: ConfigurationError.self) {
            try AccessPolicy.load(yaml: """
                roles: [employee]
                documents:
                  matrix:
                    employee: {secret: ["*"]}
                """)
        }
        // The role lists of the rules too (a typo in admin_roles would lock every admin out).
        let adminTypo = #expect(throws: ConfigurationError.self) {
            try AccessPolicy.load(yaml: """
                roles: [employee, admin]
                documents:
                  matrix:
                    employee: {public: ["*"]}
                rules:
                  admin_roles: [admn]
                """)
        }
        #expect(adminTypo?.expected.contains("rules.admin_roles") == true)
        // Without rules, the default admin role need not be declared.
        #expect(throws: Never.self) {
            try AccessPolicy.load(yaml: """
                roles: [employee]
                documents:
                  matrix:
                    employee: {public: ["*"]}
                """)
        }
    }
}
