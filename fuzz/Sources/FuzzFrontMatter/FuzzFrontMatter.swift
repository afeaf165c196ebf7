// Document front matter: `FrontMatter.parse`, the first thing ingestion does with every file.
//
// Properties:
// - it never crashes, and every refusal is a `ConclaveError` with code `ingestion_error`;
// - text that does not open with `---` has no fields and is all body (CRLF read as LF);
// - the body is what follows the front matter: a suffix of the (LF-normalised) text;
// - the split is stable: writing the fields back as YAML front matter before the same body and
//   parsing that gives the same fields and body (up to CRLF, read as LF once per parse).
import ConclaveCore
import ConclaveKnowledge
import Foundation
import FuzzSupport
import Yams

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = Fuzz.text(start, count)
    let normalized = text.replacingOccurrences(of: "\r\n", with: "\n")
    let parsed: FrontMatter
    do {
        parsed = try FrontMatter.parse(text)
    } catch let error as ConclaveError {
        Fuzz.check(error.code == .ingestion, "refused with code \(error.code), not ingestion_error: \(error)")
        Fuzz.check(normalized.hasPrefix("---\n"), "refused text without front matter: \(error)")
        return 0
    } catch {
        Fuzz.fail("refused with \(type(of: error)), not a ConclaveError: \(error)")
    }
    guard normalized.hasPrefix("---\n") else {
        Fuzz.check(parsed.fields.isEmpty, "fields \(parsed.fields) from text without front matter")
        Fuzz.check(parsed.body == normalized, "the body of text without front matter is not the text")
        return 0
    }
    Fuzz.check(normalized.hasSuffix(parsed.body), "the body is not a suffix of the text")

    let yaml: String
    do {
        yaml = try Yams.dump(object: parsed.fields)
    } catch {
        Fuzz.fail("the fields do not dump as YAML: \(error)")
    }
    let rewritten = "---\n" + yaml + "---\n" + parsed.body
    do {
        let again = try FrontMatter.parse(rewritten)
        Fuzz.check(again.fields == parsed.fields, "fields changed when written back: \(parsed.fields) → \(again.fields)\n\(rewritten)")
        // Parsing reads CRLF as LF once; a body can hold CR CR LF, which that turns into CR LF.
        let body = parsed.body.replacingOccurrences(of: "\r\n", with: "\n")
        Fuzz.check(again.body == body, "body changed when written back: \(parsed.body.debugDescription) → \(again.body.debugDescription)")
    } catch {
        Fuzz.fail("front matter written back is refused: \(error)\n\(rewritten)")
    }
    return 0
}
