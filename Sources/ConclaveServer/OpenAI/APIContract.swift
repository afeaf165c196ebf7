import Foundation

/// The API contract: `Resources/OpenAPI/openapi.json`, served at `GET /openapi.json` and checked
/// against the running server by `tests/python/test_api_contract.py`. The server also uses its
/// paths to answer a known path with the wrong method as 405 (with `Allow`) rather than 404.
enum APIContract {
    /// The document's bytes, read once from the bundle.
    static let document: Data? = Bundle.module.resourceURL
        .flatMap { try? Data(contentsOf: $0.appendingPathComponent("OpenAPI/openapi.json")) }

    /// Upper-case methods per documented path.
    static let methods: [String: [String]] = {
        guard let document, let object = try? JSONSerialization.jsonObject(with: document) as? [String: Any],
              let paths = object["paths"] as? [String: [String: Any]] else { return [:] }
        return paths.mapValues { $0.keys.map { $0.uppercased() }.sorted() }
    }()

    /// The methods of the documented path that `path` matches, a `{name}` segment matching any
    /// one segment; nil when no documented path matches.
    static func methods(matching path: String) -> [String]? {
        if let exact = methods[path] { return exact }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        for (template, allowed) in methods where template.contains("{") {
            let parts = template.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == segments.count else { continue }
            if zip(parts, segments).allSatisfy({ part, segment in
                (part.hasPrefix("{") && part.hasSuffix("}") && !segment.isEmpty) || part == segment
            }) {
                return allowed
            }
        }
        return nil
    }
}
