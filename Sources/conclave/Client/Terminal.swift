import Foundation

/// Terminal helpers that avoid touching C's global `stdout`/`stderr` from concurrent code.
enum Terminal {
    /// Writes `text` to standard output immediately (unbuffered).
    static func write(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    /// True when standard error is a terminal.
    static var stderrIsTerminal: Bool { isatty(2) != 0 }
}
