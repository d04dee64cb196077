/// `tollgate usage`'s output: report lines as an aligned table, CSV or JSON.
public enum UsageReport {
    /// Output formats.
    public enum Format: String, Sendable, CaseIterable {
        case table, csv, json
    }

    /// The header of the group column for `grouping`.
    static func groupTitle(_ grouping: UsageGrouping) -> String { grouping.rawValue }

    /// `lines` rendered; the group column is named after `grouping`, a missing group (no user, model or key) is `-`.
    public static func render(_ lines: [UsageReportLine], by grouping: UsageGrouping, format: Format) -> String {
        let titles = [groupTitle(grouping), "requests", "prompt_tokens", "completion_tokens", "tokens", "errors", "avg_ms"]
        func cells(_ l: UsageReportLine) -> [String] {
            [l.group ?? "-", String(l.requests), String(l.promptTokens), String(l.completionTokens), String(l.tokens),
             String(l.errors), String(Int(l.averageMillis.rounded()))]
        }
        switch format {
        case .table:
            let rows = [titles] + lines.map(cells)
            var widths = titles.map(\.count)
            for row in rows { for (i, c) in row.enumerated() { widths[i] = max(widths[i], c.count) } }
            return rows.map { row in
                row.enumerated().map { i, c in
                    let pad = String(repeating: " ", count: widths[i] - c.count)
                    return i == 0 ? c + pad : pad + c
                }.joined(separator: "  ")
            }.joined(separator: "\n") + "\n"
        case .csv:
            return ([titles] + lines.map(cells)).map { $0.map(csvField).joined(separator: ",") }
                .joined(separator: "\n") + "\n"
        case .json:
            let items = lines.map { l in
                "{\"\(groupTitle(grouping))\":" + (l.group.map(jsonString) ?? "null")
                    + ",\"requests\":\(l.requests),\"prompt_tokens\":\(l.promptTokens)"
                    + ",\"completion_tokens\":\(l.completionTokens),\"tokens\":\(l.tokens),\"errors\":\(l.errors)"
                    + ",\"avg_ms\":\(Int(l.averageMillis.rounded()))}"
            }
            return "[" + items.joined(separator: ",") + "]\n"
        }
    }

    private static func csvField(_ s: String) -> String {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return s }
        return "\"" + s.split(separator: "\"", omittingEmptySubsequences: false).joined(separator: "\"\"") + "\""
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
