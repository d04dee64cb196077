import Foundation
import Testing
@testable import Tollgate

/// Parses `text` as `tollgate.conf`, or fails the test with the error.
func parseConfig(_ text: String, path: String = "tollgate.conf") throws -> ConfigFile {
    try ConfigFile.parse(text: text, path: path)
}

/// The error `text` produces as `tollgate.conf`, as lines; empty when it parses.
func configErrors(_ text: String) -> [String] {
    do {
        _ = try ConfigFile.parse(text: text, path: "tollgate.conf")
        return []
    } catch {
        return error.problems.map(\.description)
    }
}

/// The error resolving produces, as lines; empty when it resolves.
func resolveErrors(flags: [String: [String]] = [:], environment: [String: String] = [:],
                   file: ConfigFile? = nil) -> [String] {
    do {
        _ = try ConfigResolver.resolve(flags: flags, environment: environment, file: file)
        return []
    } catch {
        return error.problems.map(\.description)
    }
}

/// The repository root, found from this file's path.
func repositoryRoot(_ file: String = #filePath) -> String {
    var parts = file.split(separator: "/", omittingEmptySubsequences: false)
    while let last = parts.last, last != "Tests" { parts.removeLast() }
    parts.removeLast()
    return parts.joined(separator: "/")
}

/// Writes `text` to `path`; false on failure.
func writeFile(_ path: String, _ text: String) -> Bool {
    FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
}
