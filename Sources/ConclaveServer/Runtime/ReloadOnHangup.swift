import ConclaveCore
import Logging
import ServiceLifecycle
import UnixSignals

/// SIGHUP reloads the reloadable configuration (`LiveConfiguration`), as `conclave reload`
/// does through `POST /admin/reload`: an invalid file is logged with what is wrong, and the
/// running configuration stays.
struct ReloadOnHangup: Service {
    let live: LiveConfiguration
    let logger: Logger

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        for await _ in hangups.cancelOnGracefulShutdown() {
            do {
                let outcome = try live.reload()
                if !outcome.changed {
                    logger.notice("SIGHUP: configuration files unchanged", metadata: ["config_version": "\(outcome.version.number)"])
                }
            } catch {
                logger.error("SIGHUP: reload refused; the running configuration stays",
                             metadata: ["config_version": "\(live.current.version.number)", "error": "\(error)"])
            }
        }
    }
}
