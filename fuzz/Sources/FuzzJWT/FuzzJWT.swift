// Bearer credentials: `Authenticator.authenticate(authorization:)` with an HS256 key and one API
// key. Two kinds of input:
// - an input that starts with `{` is a token payload: the target signs it with the key (header
//   `{"alg":"HS256","typ":"JWT"}`), so the claim checks behind the signature are reached;
// - anything else is the `Authorization` header value as a client sends it.
//
// Properties:
// - it never crashes, and every refusal is an `AuthenticationFailure` (a 401);
// - an accepted JWT is checked independently: three base64url parts, header `alg` HS256, an
//   HMAC-SHA256 signature (swift-crypto) that verifies with the key, issuer and audience as
//   configured, not expired and not before its `nbf` (one second of slack for the clock), and the
//   principal carries the token's subject, roles, tenant and department;
// - the API key yields its own principal, and only the exact key does.
import ConclaveCore
import ConclaveGovernance
import Crypto
import Foundation
import FuzzSupport

private let secret = "conclave-fuzz-hs256-secret-0123456789abcdef"
private let apiKey = "ck_fuzz_finance"
private let apiPrincipal = Principal(userID: "svc-fuzz", tenant: "meridian", roles: ["finance"], department: "finance")

private let authenticator: Authenticator = {
    let key = Fuzz.scratch.appendingPathComponent("hs256.key")
    let keys = Fuzz.scratch.appendingPathComponent("api-keys.yaml")
    FileManager.default.createFile(atPath: key.path, contents: Data(secret.utf8), attributes: [.posixPermissions: 0o600])
    let file = "keys:\n  - {sha256: \(Authenticator.hash(apiKey: apiKey)), user: svc-fuzz, tenant: meridian, roles: [finance], department: finance}\n"
    FileManager.default.createFile(atPath: keys.path, contents: Data(file.utf8), attributes: [.posixPermissions: 0o600])
    let configuration = AuthConfiguration(hs256KeyFile: key.path, issuer: "conclave", audience: "conclave", apiKeysFile: keys.path)
    guard let authenticator = Fuzz.blocking({ () -> Authenticator? in try? await Authenticator(configuration: configuration) }) else {
        Fuzz.fail("cannot create the authenticator")
    }
    return authenticator
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let input = Fuzz.text(start, count)
    let header: String
    if input.hasPrefix("{") {
        let signingInput = base64URL(Data(#"{"alg":"HS256","typ":"JWT"}"#.utf8)) + "." + base64URL(Data(input.utf8))
        let signature = HMAC<SHA256>.authenticationCode(for: Data(signingInput.utf8), using: SymmetricKey(data: Data(secret.utf8)))
        header = "Bearer " + signingInput + "." + base64URL(Data(signature))
    } else {
        header = input
    }
    let outcome = Fuzz.blocking { () -> Result<Principal, Error> in
        do {
            return .success(try await authenticator.authenticate(authorization: header))
        } catch {
            return .failure(error)
        }
    }
    let principal: Principal
    switch outcome {
    case .success(let accepted):
        principal = accepted
    case .failure(let error):
        Fuzz.check(error is AuthenticationFailure, "refused with \(type(of: error)), not an AuthenticationFailure: \(error)")
        return 0
    }

    guard header.lowercased().hasPrefix("bearer ") else { Fuzz.fail("accepted \(header.debugDescription) without a bearer prefix") }
    let credential = String(header.dropFirst(7)).trimmed
    if credential == apiKey {
        Fuzz.check(principal == apiPrincipal, "the API key gave \(principal)")
        return 0
    }
    checkToken(credential, gave: principal)
    return 0
}

/// The claims as an independent decoder reads them.
private struct Claims: Decodable {
    enum Audience: Decodable {
        case one(String), many([String])
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let one = try? c.decode(String.self) { self = .one(one) } else { self = .many(try c.decode([String].self)) }
        }
        var values: [String] {
            switch self {
            case .one(let value): return [value]
            case .many(let values): return values
            }
        }
    }

    var sub: String
    var iss: String
    var aud: Audience
    var exp: Double
    var nbf: Double?
    var tenant: String?
    var roles: [String]
    var department: String?
}

private func checkToken(_ token: String, gave principal: Principal) {
    let parts = token.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
    Fuzz.check(parts.count == 3, "accepted \(token.debugDescription), which is not three parts")
    guard let headerData = base64URLDecode(parts[0]), let payload = base64URLDecode(parts[1]), let signature = base64URLDecode(parts[2]) else {
        Fuzz.fail("accepted \(token.debugDescription), whose parts are not base64url")
    }
    let header = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any]
    Fuzz.check(header?["alg"] as? String == "HS256", "accepted a token whose header is \(String(decoding: headerData, as: UTF8.self))")
    Fuzz.check(HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: Data((parts[0] + "." + parts[1]).utf8),
                                                      using: SymmetricKey(data: Data(secret.utf8))),
               "accepted \(token.debugDescription), whose signature does not verify")
    let claims: Claims
    do {
        claims = try JSONDecoder().decode(Claims.self, from: payload)
    } catch {
        Fuzz.fail("accepted a token whose claims do not decode (\(error)): \(String(decoding: payload, as: UTF8.self))")
    }
    let now = Date().timeIntervalSince1970
    Fuzz.check(claims.iss == "conclave", "accepted issuer \(claims.iss)")
    Fuzz.check(claims.aud.values.contains("conclave"), "accepted audience \(claims.aud.values)")
    Fuzz.check(claims.exp > now - 1, "accepted a token that expired at \(claims.exp), now \(now)")
    Fuzz.check((claims.nbf ?? 0) <= now + 1, "accepted a token not valid before \(claims.nbf ?? 0), now \(now)")
    Fuzz.check(principal.userID == claims.sub && principal.roles == claims.roles && principal.tenant == (claims.tenant ?? "default")
                   && principal.department == claims.department,
               "the principal \(principal) is not the token's: \(String(decoding: payload, as: UTF8.self))")
}

private func base64URL(_ data: Data) -> String {
    data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        .replacingOccurrences(of: "=", with: "")
}

private func base64URLDecode(_ text: String) -> Data? {
    var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while base64.count % 4 != 0 { base64 += "=" }
    return Data(base64Encoded: base64)
}
