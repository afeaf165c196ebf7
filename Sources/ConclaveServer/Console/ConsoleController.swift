import HTTPTypes
import Hummingbird

/// One embedded console file.
struct ConsoleAsset: Sendable {
    var contentType: String
    /// A digest of the file, for conditional requests.
    var etag: String
    var text: String
}

/// Serves the web console at `/console` from ``ConsoleAssets``. The pages are public (they hold no
/// data); everything they show comes from the API with the signed-in user's token. A strict
/// Content-Security-Policy keeps the page to its own scripts and its own origin.
struct ConsoleController: Sendable {
    static let securityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
        + "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    func addRoutes(to router: Router<BasicRequestContext>) {
        router.get("/console") { request, _ in Self.serve("index.html", request) }
        router.get("/console/:file") { request, context in Self.serve(context.parameters.get("file") ?? "", request) }
    }

    static func serve(_ name: String, _ request: Request) -> Response {
        guard let asset = ConsoleAssets.files[name] else {
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; charset=utf-8"
            return Response(status: .notFound, headers: headers, body: .init(byteBuffer: ByteBuffer(string: "Not found\n")))
        }
        var headers = HTTPFields()
        headers[.contentType] = asset.contentType
        headers[.eTag] = asset.etag
        headers[.cacheControl] = "no-cache"
        headers[.contentSecurityPolicy] = securityPolicy
        headers[.xContentTypeOptions] = "nosniff"
        headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        if request.headers[.ifNoneMatch] == asset.etag {
            return Response(status: .notModified, headers: headers)
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: asset.text)))
    }
}
