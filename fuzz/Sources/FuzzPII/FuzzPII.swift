// The PII detectors and the masker: `PIIDetector.matches`, `PIIMasker.mask` and the masker's
// stream filter (`outputStream()`), with the masked form of each PII type and the stream's chunk
// boundaries taken from the input.
//
// Properties:
// - matches are well formed: inside the text, non-empty, sorted, not overlapping, of a known
//   type, and each one's value is the text of its range;
// - masking replaces exactly the matches it must: the output is the text with every masked
//   match's range replaced by its masked form and everything else unchanged, and no masked form
//   contains the value it stands for;
// - streaming leaks nothing that masking the whole text hides: no value of at most 64 bytes that
//   the whole-text output does not show appears in the streamed output, wherever the chunks end.
import ConclaveCore
@testable import ConclaveGovernance
import Foundation
import FuzzSupport

private let detector = PIIDetector(workDomains: ["meridian-freight.example"],
                                   names: ["Joris Tidelhoven", "Pieter Hollenkamp", "Eva Kesselholm"])
private let types: Set<String> = ["email", "private_contact", "phone", "iban", "card", "national_id", "date_of_birth",
                                  "ip_address", "salary", "person"]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = Fuzz.text(start, count)
    let bytes = Array(text.utf8)
    var choices = FuzzChoices(Fuzz.bytes(start, count))

    let matches = detector.matches(in: text)
    var previousEnd = 0
    for match in matches {
        Fuzz.check(types.contains(match.type), "unknown type \(match.type)")
        Fuzz.check(!match.range.isEmpty && match.range.upperBound <= bytes.count, "range \(match.range) in \(bytes.count) bytes")
        Fuzz.check(match.range.lowerBound >= previousEnd, "\(match) overlaps or precedes the match before it")
        Fuzz.check(match.value == String(decoding: bytes[match.range], as: UTF8.self), "value \(match.value) is not its range's text")
        previousEnd = match.range.upperBound
    }

    // Each type gets a form its values can take: partial only for addresses, last-two only for phones.
    var access: [String: FieldAccess] = [:]
    for type in types.sorted() {
        var options: [FieldAccess] = [.unmasked, .masked(.restricted), .masked(.hash)]
        if type == "email" || type == "private_contact" { options.append(.masked(.partial)) }
        if type == "phone" { options.append(.masked(.lastTwo)) }
        access[type] = options[choices.int(in: 0...(options.count - 1))]
    }
    let visibility = access
    let masker = PIIMasker(detector: detector) { visibility[$0] ?? .masked(.restricted) }
    let masked = masker.mask(text)

    var expected: [UInt8] = []
    var position = 0
    var hidden: [[UInt8]] = []
    for match in matches {
        guard case .masked(let form)? = access[match.type] else { continue }
        let shown = PIIMasker.masked(match, form)
        Fuzz.check(!shown.contains(match.value), "the \(form) form \(shown) of \(match.type) shows \(match.value)")
        expected += bytes[position..<match.range.lowerBound] + Array(shown.utf8)
        position = match.range.upperBound
        hidden.append(Array(match.value.utf8))
    }
    expected += bytes[position...]
    Fuzz.check(Array(masked.utf8) == expected, "masked \(masked.debugDescription), expected \(String(decoding: expected, as: UTF8.self).debugDescription)")

    var filter = masker.outputStream()
    var streamed = ""
    let scalars = Array(text.unicodeScalars)
    var from = 0
    for cut in choices.cuts(scalars.count, count: choices.int(in: 1...12)) + [scalars.count] {
        var piece = String.UnicodeScalarView()
        piece.append(contentsOf: scalars[from..<cut])
        streamed += filter.append(String(piece))
        from = cut
    }
    streamed += filter.finish()
    let wholeOutput = Array(masked.utf8)
    let streamOutput = Array(streamed.utf8)
    for value in hidden where value.count <= 64 && !Fuzz.contains(wholeOutput, value) {
        Fuzz.check(!Fuzz.contains(streamOutput, value),
                   "streaming shows \(String(decoding: value, as: UTF8.self).debugDescription), which masking the whole text hides; "
                       + "streamed \(streamed.debugDescription), whole \(masked.debugDescription)")
    }
    return 0
}
