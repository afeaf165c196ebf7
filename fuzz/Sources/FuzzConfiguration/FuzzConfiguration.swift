// The configuration file and `CONCLAVE_*` variables: `ConfigurationLoader.load(path:environment:)`.
// The input is a YAML file; its comment lines `# env: NAME=VALUE` are also passed as environment
// variables, so one corpus file exercises both sources.
//
// Properties:
// - it never crashes, and every refusal is a `ConfigurationError` naming a key (what
//   `conclave config check` and `serve` report; any other error would be an unexplained failure);
// - an accepted configuration validates, every duration in it (a `…Seconds` number) can become
//   a `Duration` (finite, within Int64 milliseconds), and it survives encode → load: writing it
//   back as YAML and loading that file (no environment) gives an equal configuration.
import ConclaveCore
import ConclaveKnowledge
import ConclaveServer
import Foundation
import FuzzSupport
import Yams

private let file = Fuzz.scratch.appendingPathComponent("conclave.yaml").path
private let again = Fuzz.scratch.appendingPathComponent("again.yaml").path

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = Fuzz.text(start, count)
    let variables = environment(in: text)
    _ = FileManager.default.createFile(atPath: file, contents: Data(bytes: start, count: count))
    let configuration: ConclaveConfiguration
    do {
        configuration = try ConfigurationLoader.load(path: file, environment: variables)
    } catch let error as ConfigurationError {
        // An unknown key may be the empty one (`"": x`, or `&a : x`, an anchored empty key).
        Fuzz.check(!error.key.isEmpty || error.isUnknownKey, "a ConfigurationError without a key: \(error)")
        return 0
    } catch {
        Fuzz.fail("refused with \(type(of: error)), not a ConfigurationError: \(error)")
    }
    do {
        try configuration.validate()
    } catch {
        Fuzz.fail("an accepted configuration does not validate: \(error)")
    }
    checkDurations(configuration, path: "")

    let yaml: String
    do {
        yaml = try YAMLEncoder().encode(configuration)
    } catch {
        Fuzz.fail("an accepted configuration does not encode: \(error)")
    }
    _ = FileManager.default.createFile(atPath: again, contents: Data(yaml.utf8))
    do {
        let reloaded = try ConfigurationLoader.load(path: again, environment: [:])
        Fuzz.check(reloaded == configuration, "encode → load changed the configuration; encoded:\n\(yaml)")
    } catch {
        Fuzz.fail("the encoded configuration is refused: \(error); encoded:\n\(yaml)")
    }
    return 0
}

/// Every `…Seconds` number becomes a `Duration` as `.milliseconds(Int64(seconds * 1000))`, which
/// traps on infinity, NaN and values past Int64: an accepted configuration must hold none.
private func checkDurations(_ value: Any, path: String) {
    for child in Mirror(reflecting: value).children {
        guard let label = child.label else { continue }
        let key = path.isEmpty ? label : path + "." + label
        if let seconds = child.value as? Double, label.hasSuffix("Seconds") {
            Fuzz.check(seconds.isFinite && abs(seconds * 1000) < 9.2e18, "accepted \(key) = \(seconds), which no Duration can hold")
        } else if !(child.value is String), !(child.value is Int), !(child.value is Bool), !(child.value is Double) {
            checkDurations(child.value, path: key)
        }
    }
}

/// The `# env: NAME=VALUE` comment lines of the input, as environment variables.
private func environment(in text: String) -> [String: String] {
    var variables: [String: String] = [:]
    for line in text.split(whereSeparator: \.isNewline) {
        guard line.hasPrefix("# env: ") else { continue }
        let assignment = line.dropFirst("# env: ".count)
        guard let equals = assignment.firstIndex(of: "="), equals != assignment.startIndex else { continue }
        variables[String(assignment[..<equals])] = String(assignment[assignment.index(after: equals)...])
    }
    return variables
}
