import ConclaveCore
import ConclaveInference
import ConclaveKnowledge
import Foundation

/// Has the workflow's model choose and fill a SQL template (`knowledge.sql_template_choice:
/// model`), by JSON-schema constrained output over the connector's catalog
/// (``DatabaseConnector/choiceSchema``): the template's name must be one of the catalog's, each
/// parameter has its type, bounds and known values in the grammar. The choice is then validated
/// like the rules' values. The model never writes SQL.
struct SQLTemplateChooser: Sendable {
    let model: any ChatModel
    let prompt: AgentPrompts.RolePrompt

    static let instructions = """
        You choose the database query template that answers the user's question and fill in its parameters \
        with values the question states. Leave out parameters the question does not give. If no template \
        answers the question, choose "none". Reply with JSON only, for example:
        {"template":"<template name>","parameters":{"<parameter>":"<value>"}}
        """

    /// What became of the model's choice, for the trace.
    enum Outcome: Equatable {
        /// The model's template runs.
        case chosen(String)
        /// The model chose no template.
        case none
        /// The model's output was missing or did not validate (the reason).
        case unusable(String)

        var description: String {
            switch self {
            case .chosen(let name): "model:\(name)"
            case .none: "model:none"
            case .unusable(let reason): "model unusable: \(reason)"
            }
        }
    }

    /// The model's choice for `question`, validated.
    func choose(_ question: String, connector: DatabaseConnector, context: AgentContext) async throws
        -> (match: DatabaseConnector.Match?, outcome: Outcome, usage: TokenUsage)
    {
        let messages: [ChatMessage] = [
            .system((prompt.instructions ?? Self.instructions) + "\n\nTemplates:\n" + connector.choiceCatalog),
            .user("Question: \(question)"),
        ]
        let (output, usage) = try await StructuredOutput<TemplateChoice>(
            schema: connector.choiceSchema, maxTokens: prompt.maxTokens ?? 120, temperature: prompt.temperature)
            .request(messages, model: model, context: context)
        guard let output else { return (nil, .unusable("no JSON choice"), usage) }
        do {
            guard let match = try connector.match(output) else { return (nil, .none, usage) }
            return (match, .chosen(match.template.name), usage)
        } catch let error as TemplateError {
            return (nil, .unusable(error.message), usage)
        }
    }
}

extension DatabaseConnector {
    /// The connector behind `source` (directly, or inside the reloadable wrapper), if it is one.
    static func underlying(_ source: any EvidenceSource) -> DatabaseConnector? {
        if let connector = source as? DatabaseConnector { return connector }
        return (source as? SwappableSource)?.source as? DatabaseConnector
    }
}
