import ConclaveCore
import Foundation
import Hummingbird

/// The evaluation reports under `console.reports_dir`, one directory each (`make study` and
/// `conclave eval --output` write them): `GET /v1/evaluations` lists them newest first,
/// `GET /v1/evaluations/{id}` (or `latest`) returns one with its Markdown tables, and
/// `GET /v1/evaluations/{id}/files/{name}` one of its files (figures, JSON, CSV). Reports hold
/// aggregate scores only, so every authenticated caller may read them.
struct EvaluationReports: Sendable {
    let directory: String

    /// The file kinds served, by extension.
    static let contentTypes = [
        "md": "text/markdown; charset=utf-8", "json": "application/json", "csv": "text/csv; charset=utf-8",
        "png": "image/png", "svg": "image/svg+xml",
    ]

    /// A report: `Summary` lists its Markdown files by name, `Report` carries their text.
    struct Listing<Document: Codable & Sendable>: Codable, Sendable {
        var id: String
        var object = "evaluation.report"
        var createdAt: Int
        var documents: [Document]
        var figures: [String]
        var files: [String]

        enum CodingKeys: String, CodingKey {
            case id, object, documents, figures, files
            case createdAt = "created_at"
        }
    }

    struct MarkdownDocument: Codable, Sendable {
        var name: String
        var markdown: String
    }

    typealias Summary = Listing<String>
    typealias Report = Listing<MarkdownDocument>

    func addRoutes(to router: Router<BasicRequestContext>, runtime: ConclaveRuntime) {
        router.get("/v1/evaluations") { request, _ -> Response in
            _ = try await runtime.admit(authorization: request.headers[.authorization])
            return try JSONCoding.response(WorkspaceController.List(data: reports()))
        }
        router.get("/v1/evaluations/:id") { request, context -> Response in
            _ = try await runtime.admit(authorization: request.headers[.authorization])
            return try JSONCoding.response(try report(context.parameters.get("id") ?? ""))
        }
        router.get("/v1/evaluations/:id/files/:name") { request, context -> Response in
            _ = try await runtime.admit(authorization: request.headers[.authorization])
            let summary = try summary(context.parameters.get("id") ?? "")
            let name = context.parameters.get("name") ?? ""
            guard summary.files.contains(name), let type = Self.contentType(of: name),
                  let data = FileManager.default.contents(atPath: path(summary.id, name)) else {
                throw ConclaveError(.notFound, "The report '\(summary.id)' has no file '\(name)'.")
            }
            var headers = HTTPFields()
            headers[.contentType] = type
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
    }

    static func contentType(of name: String) -> String? {
        guard let dot = name.lastIndex(of: ".") else { return nil }
        return contentTypes[String(name[name.index(after: dot)...]).lowercased()]
    }

    private func path(_ parts: String...) -> String {
        ([directory] + parts).joined(separator: "/")
    }

    /// Every report directory (a direct child holding at least one served file), newest first:
    /// names start with their UTC timestamp, so the name orders them.
    func reports() -> [Summary] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted(by: >).compactMap { try? summary($0) }
    }

    /// One report's listing; `latest` names the newest. Names that are not a plain child of the
    /// reports directory (`..`, slashes, hidden) are unknown reports.
    func summary(_ id: String) throws -> Summary {
        if id == "latest" {
            guard let newest = reports().first else { throw ConclaveError(.notFound, "There is no evaluation report in '\(directory)' yet.") }
            return newest
        }
        var isDirectory: ObjCBool = false
        guard !id.isEmpty, !id.hasPrefix("."), !id.contains("/"), !id.contains("\\"),
              FileManager.default.fileExists(atPath: path(id), isDirectory: &isDirectory), isDirectory.boolValue,
              let names = try? FileManager.default.contentsOfDirectory(atPath: path(id)) else {
            throw ConclaveError(.notFound, "No evaluation report '\(id)'.")
        }
        let files = names.filter { !$0.hasPrefix(".") && Self.contentType(of: $0) != nil }.sorted()
        guard !files.isEmpty else { throw ConclaveError(.notFound, "No evaluation report '\(id)'.") }
        let created = (try? FileManager.default.attributesOfItem(atPath: path(id))[.modificationDate] as? Date) ?? nil
        return Summary(id: id, createdAt: Int((Self.timestamp(in: id) ?? created ?? Date()).timeIntervalSince1970),
                       documents: files.filter { $0.hasSuffix(".md") },
                       // A figure written as both SVG and PNG is offered once, as SVG.
                       figures: files.filter { name in
                           name.hasSuffix(".svg") || (name.hasSuffix(".png") && !files.contains(String(name.dropLast(4)) + ".svg"))
                       },
                       files: files)
    }

    /// The report with its Markdown documents' text.
    func report(_ requested: String) throws -> Report {
        let summary = try summary(requested)
        let documents = summary.documents.compactMap { name in
            (try? String(contentsOfFile: path(summary.id, name), encoding: .utf8)).map { MarkdownDocument(name: name, markdown: $0) }
        }
        return Report(id: summary.id, createdAt: summary.createdAt, documents: documents, figures: summary.figures, files: summary.files)
    }

    /// `20261126T031933Z…` as a date; nil for other names.
    static func timestamp(in name: String) -> Date? {
        guard name.count >= 16 else { return nil }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return formatter.date(from: String(name.prefix(16)))
    }
}
