import Foundation

/// A model's choice of query template, in the shape ``DatabaseConnector/choiceSchema`` constrains:
/// `{"template": "<name or none>", "parameters": {"<name>": <value>}}`. Values may come as JSON
/// strings or numbers; both are kept as text and validated like the rules' values.
public struct TemplateChoice: Sendable, Hashable, Decodable {
    /// The template's name, or `none`.
    public var template: String
    /// Raw parameter values.
    public var parameters: [String: String]

    /// Creates a choice.
    public init(template: String, parameters: [String: String] = [:]) {
        self.template = template
        self.parameters = parameters
    }

    enum CodingKeys: String, CodingKey { case template, parameters }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        template = try c.decode(String.self, forKey: .template)
        var parameters: [String: String] = [:]
        if let raw = try c.decodeIfPresent([String: Scalar].self, forKey: .parameters) {
            for (name, value) in raw { if let text = value.text { parameters[name] = text } }
        }
        self.parameters = parameters
    }

    /// A JSON string, number or null.
    struct Scalar: Decodable {
        var text: String?
        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if c.decodeNil() { text = nil }
            else if let s = try? c.decode(String.self) { text = s }
            else if let i = try? c.decode(Int64.self) { text = String(i) }
            else { text = String(try c.decode(Double.self)) }
        }
    }
}

extension DatabaseConnector {
    /// Distinct values above which a parameter's schema is a bounded string rather than an enum.
    static let choiceEnumLimit = 60

    /// The JSON schema for a model's template choice: one alternative per template (lookups, which
    /// only ever run beside another template, excluded) with its parameters typed and bounded —
    /// known values as enums, integers and numbers within their bounds, dates and date ranges by
    /// pattern, strings capped in length — and `{"template": "none"}`. Bounded so that grammar-
    /// constrained decoding cannot loop. Built once, when the connector opens (``choiceSchema``).
    static func choiceSchema(_ catalog: TemplateCatalog, lexicon: [String: [String]]) -> String {
        var alternatives: [[String: Any]] = []
        for template in catalog.templates where !template.isLookup {
            var properties: [String: Any] = [:]
            for p in template.parameters { properties[p.name] = parameterSchema(p, lexicon: lexicon) }
            let required = template.parameters.filter { $0.required == true }.map(\.name)
            var parameters: [String: Any] = ["type": "object", "properties": properties, "additionalProperties": false]
            if !required.isEmpty { parameters["required"] = required }
            alternatives.append([
                "type": "object",
                "properties": ["template": ["type": "string", "enum": [template.name]], "parameters": parameters],
                "required": ["template", "parameters"],
                "additionalProperties": false,
            ])
        }
        alternatives.append([
            "type": "object",
            "properties": ["template": ["type": "string", "enum": ["none"]],
                           "parameters": ["type": "object", "properties": [:] as [String: Any], "additionalProperties": false]],
            "required": ["template", "parameters"],
            "additionalProperties": false,
        ])
        let schema: [String: Any] = ["anyOf": alternatives]
        let data = (try? JSONSerialization.data(withJSONObject: schema, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    private static func parameterSchema(_ p: QueryTemplate.Parameter, lexicon: [String: [String]]) -> [String: Any] {
        let known = (p.values ?? []) + (p.valuesFrom.flatMap { lexicon[$0] } ?? [])
        switch p.type {
        case .string:
            if !known.isEmpty, known.count <= Self.choiceEnumLimit { return ["type": "string", "enum": known] }
            return ["type": "string", "minLength": 1, "maxLength": 80]
        case .list:
            return ["type": "string", "minLength": 1, "maxLength": 160]
        case .integer:
            var schema: [String: Any] = ["type": "integer"]
            if let minimum = p.minimum { schema["minimum"] = Int64(minimum) }
            if let maximum = p.maximum { schema["maximum"] = Int64(maximum) }
            return schema
        case .number:
            var schema: [String: Any] = ["type": "number"]
            if let minimum = p.minimum { schema["minimum"] = minimum }
            if let maximum = p.maximum { schema["maximum"] = maximum }
            return schema
        case .date:
            return ["type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"]
        case .dateRange:
            return ["type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}/[0-9]{4}-[0-9]{2}-[0-9]{2}$"]
        case .keyword:
            return ["type": "string", "enum": (p.choices ?? [:]).keys.sorted()]
        }
    }

    /// The templates described for a model's prompt: one line per template with its parameters,
    /// their types and (for short lists) their values. Built once, when the connector opens
    /// (``choiceCatalog``).
    static func choiceCatalog(_ catalog: TemplateCatalog, lexicon: [String: [String]]) -> String {
        catalog.templates.filter { !$0.isLookup }.map { template in
            let parameters = template.parameters.map { p -> String in
                var line = "\(p.name) (\(p.type.rawValue)"
                let known = (p.values ?? []) + (p.valuesFrom.flatMap { lexicon[$0] } ?? [])
                if p.type == .keyword, let choices = p.choices { line += ": " + choices.keys.sorted().joined(separator: " | ") }
                else if !known.isEmpty, known.count <= 8 { line += ": " + known.joined(separator: " | ") }
                else if p.type == .dateRange { line += ": YYYY-MM-DD/YYYY-MM-DD" }
                return line + ")"
            }
            return "- \(template.name): \(template.description)" + (parameters.isEmpty ? "" : "; parameters: " + parameters.joined(separator: ", "))
        }.joined(separator: "\n")
    }

    /// The match for a model's choice, validated as the rules' values are (types, bounds, known
    /// values); nil when the model chose `none`.
    /// - Throws: ``TemplateError`` naming the template or parameter the model got wrong.
    public func match(_ choice: TemplateChoice) throws -> Match? {
        if choice.template == "none" { return nil }
        guard let template = template(named: choice.template), !template.isLookup else {
            throw TemplateError("the model chose an unknown template \"\(choice.template.prefix(60))\"")
        }
        _ = try template.validate(choice.parameters, lexicon: lexicon)
        return Match(template: template, values: choice.parameters, score: 1)
    }
}
