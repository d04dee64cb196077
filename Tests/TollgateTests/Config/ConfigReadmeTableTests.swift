import Foundation
import Testing
@testable import Tollgate

/// README's settings table lists every setting once, with whether a reload applies it as the table says.
@Suite struct ConfigReadmeTableTests {
    @Test func everySettingHasItsRowAndItsReloadRule() throws {
        let text = try String(contentsOfFile: repositoryRoot() + "/README.md", encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let header = try #require(lines.firstIndex(of: "| setting | default | reload | meaning |"),
                                  "README has no settings table with a reload column")
        var rows: [String: String] = [:]
        for line in lines[(header + 2)...] {
            guard line.hasPrefix("|") else { break }
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            let names = cells[1].split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: " `")) }
            for name in names {
                #expect(rows[name] == nil, "\(name) has two rows in README's settings table")
                rows[name] = cells[3]
            }
        }
        for d in SettingDefinition.all {
            let expected = d.reloadable ? "yes" : "restart"
            #expect(rows[d.name] == expected, "README's row for \(d.name): reload \(rows[d.name] ?? "missing"), expected \(expected)")
        }
        #expect(Set(rows.keys) == Set(SettingDefinition.all.map(\.name)), "README rows that are not settings")
    }
}
