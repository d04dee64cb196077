/// How a streamed reply's lines become HTTP chunks: one chunk per line, or one per server-sent event in a line, as
/// Ollama's Anthropic and Responses writers flush after every event while its OpenAI chat writer flushes once per
/// model output line.
enum StreamFlushing {
    /// A line is one flush, one chunk.
    case perLine
    /// Each `…\n\n`-terminated event of a line is its own chunk (written together; the pacing is per line).
    case perEvent

    /// The ranges of `line` that go out as separate chunks.
    func chunks(of line: [UInt8]) -> [Range<Int>] {
        guard self == .perEvent else { return [0..<line.count] }
        var ranges: [Range<Int>] = []
        var start = 0
        var i = 0
        while i + 1 < line.count {
            if line[i] == 0x0A && line[i + 1] == 0x0A {
                ranges.append(start..<(i + 2))
                start = i + 2
                i += 2
            } else {
                i += 1
            }
        }
        if start < line.count { ranges.append(start..<line.count) }
        return ranges
    }
}
