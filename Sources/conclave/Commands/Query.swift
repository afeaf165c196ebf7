import ArgumentParser
import ConclaveCore
import ConclaveGovernance
import ConclaveKnowledge
import Foundation

struct Query: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Answer a question from the business database (governed SQL templates) or the internal API.",
        discussion: """
            Shows which template of knowledge.sql_templates_file the question selects, the parameters read off \
            it, the SQL that runs (with bind values) and the evidence the agents would receive. With --user, the \
            access policy applies as it would for that user's requests; with --template and --param, a template \
            runs with explicit values (validated by type, as the model's JSON would be).
            """)

    @Argument(help: "The question (omit with --template).")
    var question: String?

    @Option(name: .long, help: "User id from auth.users_file whose access applies.")
    var user: String?

    @Option(name: .long, help: "Run this template instead of choosing one.")
    var template: String?

    @Option(name: .long, parsing: .upToNextOption, help: "Template parameter as name=value (lists comma-separated, ranges from/to).")
    var param: [String] = []

    @Option(name: .long, help: "YAML configuration file.")
    var config: String?

    /// The API connector's choice for a question no SQL template serves.
    private func answerFromAPI(_ question: String, configuration: ConclaveConfiguration, scope: DocumentScope) async throws {
        guard !configuration.knowledge.apiFile.isEmpty else {
            print("No template serves this question; the documents would answer it.")
            return
        }
        let api = try APIConnector(path: configuration.knowledge.apiFile, baseURL: configuration.knowledge.apiBaseURL)
        guard let match = api.match(question) else {
            print("No template or API operation serves this question; the documents would answer it.")
            return
        }
        print("api operation: \(match.operation.id) \(match.operation.policyName) (score \(String(format: "%.2f", match.score)))")
        print("arguments: " + match.arguments.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))
        let retrieval = await api.evidence(for: question, scope: scope)
        for source in retrieval.withheld { print("withheld: \(source.documentID) (ask \(source.department ?? "the data owner"))") }
        for evidence in retrieval.evidence { print("evidence [\(evidence.source.id)]: \(evidence.text)") }
        if retrieval.evidence.isEmpty && retrieval.withheld.isEmpty { print("the API call failed (see the log)") }
    }

    func run() async throws {
        let configuration = try loadConfiguration(path: config)
        try await reportingFailures {
            guard !configuration.knowledge.sqlTemplatesFile.isEmpty else {
                throw ValidationFailure("knowledge.sql_templates_file is empty: no database connector is configured")
            }
            let connector = try DatabaseConnector(path: configuration.knowledge.sqlTemplatesFile)
            var scope = DocumentScope.unrestricted
            if let user {
                let directory = try UserDirectory(path: configuration.auth.usersFile)
                guard let entry = directory.user(user) else { throw ValidationFailure("unknown user '\(user)'") }
                let policy = try AccessPolicy.load(path: configuration.governance.policyFile)
                scope = PolicyDecisionPoint(policy: policy).documentScope(for: entry.principal, documents: [])
            }
            let chosen: QueryTemplate
            var values: [String: String] = [:]
            if let name = template {
                guard let found = connector.template(named: name) else {
                    throw ValidationFailure("unknown template '\(name)'; known: \(connector.catalog.templates.map(\.name).joined(separator: ", "))")
                }
                chosen = found
                for pair in param {
                    let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                    guard parts.count == 2 else { throw ValidationFailure("--param takes name=value, got '\(pair)'") }
                    values[parts[0]] = parts[1]
                }
            } else {
                guard let question, !question.isEmpty else { throw ValidationFailure("give a question or --template") }
                guard let match = connector.match(question) else {
                    try await answerFromAPI(question, configuration: configuration, scope: scope)
                    return
                }
                chosen = match.template
                values = match.values
                print("template: \(chosen.name) (score \(String(format: "%.2f", match.score)))")
            }
            print("parameters: " + values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))
            let validated = try chosen.validate(values, lexicon: [:])
            let (sql, bindings) = try chosen.compile(validated)
            print("sql: " + sql.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " "))
            print("bindings: " + bindings.map(\.description).joined(separator: ", "))
            let retrieval = try connector.run(chosen, values: values, scope: scope, subQuestion: question ?? "")
            for source in retrieval.withheld {
                print("withheld: \(source.documentID) (ask \(source.department ?? "the data owner"))")
            }
            for evidence in retrieval.evidence {
                print("evidence [\(evidence.source.id)]: \(evidence.text)")
            }
        }
    }
}
