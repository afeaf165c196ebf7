import ArgumentParser
import ConclaveCore
import ConclaveServer
import Foundation

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Work with configuration files.", subcommands: [Check.self])

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a configuration file (with CONCLAVE_* overrides) and its workflows; exit 1 on any problem.")

        @Argument(help: "YAML configuration file.")
        var file: String

        func run() async throws {
            let configuration = try loadConfiguration(path: file)
            do {
                try ConclaveServer.validateTLS(configuration.server)
                let registry = try WorkflowRegistry(userDirectory: configuration.workflows.directory,
                                                    defaultName: configuration.workflows.defaultWorkflow)
                for warning in configuration.secretFileWarnings() {
                    FileHandle.standardError.write(Data("warning: \(warning)\n".utf8))
                }
                print("\(file): OK (workflows: \(registry.workflows.keys.sorted().joined(separator: ", ")); provider: \(configuration.inference.provider.rawValue))")
            } catch let error as ConfigurationError {
                throw ValidationFailure(error.description)
            } catch let error as ConclaveError {
                throw ValidationFailure(error.message)
            }
        }
    }
}
