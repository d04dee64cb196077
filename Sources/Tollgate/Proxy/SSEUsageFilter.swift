/// Removes from an OpenAI event stream the usage Tollgate asked for (`BodyRewrite.Plan.usageInjected`), so the
/// client receives the bytes it would have received without Tollgate.
///
/// With `stream_options.include_usage`, Ollama adds one event `data: {…,"choices":[],"usage":{…}}` before
/// `data: [DONE]` (chat and completions), and on `/v1/completions` also a zero `"usage"` member to every chunk. The
/// filter holds each event only until its blank line has arrived (Ollama writes an event in one write), then drops
/// the usage-only event, takes the `usage` member out of any other, and passes every other event through as it came.
/// An event that grows past `maxEvent` without ending is passed through as it comes, but for its last few kilobytes,
/// from which the `usage` member that ends Ollama's `/v1/completions` chunks is taken out; filtering resumes with
/// the next event. So at most `maxEvent` (plus one read) is held, and an event Tollgate asked for never reaches the
/// client: the usage-only event is a few hundred bytes, never that large.
///
/// Loop thread of its exchange.
struct SSEUsageFilter {
    /// The most bytes one event may hold back.
    static let maxEvent = 1 << 20

    private var held: [UInt8] = []
    /// Whether the last byte seen was a line feed (a second one ends the event).
    private var afterNewline = false
    /// The event now arriving grew past `maxEvent`: its bytes pass as they come, up to its end.
    private var passingEvent = false

    /// Feeds `buffer[range]` (de-chunked body bytes); appends what the client gets now to `out`.
    mutating func feed(_ buffer: [UInt8], _ range: Range<Int>, into out: inout [UInt8]) {
        var start = range.lowerBound
        for i in range {
            let b = buffer[i]
            if b == 0x0D { continue }  // CRLF line ends: the LF decides
            if b == 0x0A {
                if afterNewline {
                    if passingEvent {
                        held.append(contentsOf: buffer[start...i])
                        out.append(contentsOf: Self.withoutTrailingUsage(held))
                        held.removeAll(keepingCapacity: false)
                        passingEvent = false
                    } else {
                        held.append(contentsOf: buffer[start...i])
                        emit(into: &out)
                    }
                    start = i + 1
                    afterNewline = false
                    continue
                }
                afterNewline = true
            } else {
                afterNewline = false
            }
        }
        held.append(contentsOf: buffer[start..<range.upperBound])
        if held.count > Self.maxEvent {
            passingEvent = true
        }
        if passingEvent && held.count > Self.tailKept {
            // Only the tail waits, for the zero `usage` member Ollama ends a `/v1/completions` chunk with.
            out.append(contentsOf: held[..<(held.count - Self.tailKept)])
            held.removeFirst(held.count - Self.tailKept)
        }
    }

    /// What an oversized event keeps back: room for Ollama's `,"usage":{…}` member and the event's end.
    static let tailKept = 4096

    /// The tail of an oversized event without a last top-level `,"usage":{…}` member: the line ends `,"usage":{`,
    /// a flat object, and the one `}` that closes the event's object (an unescaped `"` cannot be inside a string,
    /// and a nested object's member would be followed by more than one closing brace).
    static func withoutTrailingUsage(_ tail: [UInt8]) -> [UInt8] {
        var end = tail.count
        while end > 0, tail[end - 1] == 0x0A || tail[end - 1] == 0x0D { end -= 1 }
        guard end >= 2, tail[end - 1] == UInt8(ascii: "}") else { return tail }
        let marker = Array(",\"usage\":{".utf8)
        var k = end - 1 - marker.count
        while k >= 0, !tail[k..<k + marker.count].elementsEqual(marker) { k -= 1 }
        guard k >= 0 else { return tail }
        let inner = tail[(k + marker.count)..<(end - 1)]
        // The flat object and its `}`: no brace in it but the last.
        guard let close = inner.firstIndex(of: UInt8(ascii: "}")), close == inner.endIndex - 1,
              !inner.contains(UInt8(ascii: "{")) else { return tail }
        return Array(tail[..<k]) + Array(tail[(end - 1)...])
    }

    /// The stream ended: an unfinished event held goes out as it is (a client drops an event without its blank
    /// line anyway), unless it is Tollgate's usage-only event.
    mutating func finish(into out: inout [UInt8]) {
        if !held.isEmpty { emit(into: &out) }
        held = []
    }

    /// One complete event is in `held`.
    private mutating func emit(into out: inout [UInt8]) {
        defer { held.removeAll(keepingCapacity: true) }
        guard let filtered = Self.filter(held) else {
            out.append(contentsOf: held)
            return
        }
        out.append(contentsOf: filtered)
    }

    /// The event without Tollgate's usage: empty when the whole event goes, nil when it is unchanged.
    static func filter(_ event: [UInt8]) -> [UInt8]? {
        // The data line: "data:" at a line start, one optional space, the JSON object up to the line's end.
        var lineStart = 0
        while lineStart < event.count {
            var lineEnd = lineStart
            while lineEnd < event.count && event[lineEnd] != 0x0A && event[lineEnd] != 0x0D { lineEnd += 1 }
            if lineEnd - lineStart > 5, event[lineStart..<lineStart + 5].elementsEqual("data:".utf8) {
                var p = lineStart + 5
                if p < lineEnd && event[p] == 0x20 { p += 1 }
                guard p < lineEnd, event[p] == UInt8(ascii: "{") else { return nil }
                return filterData(event, p..<lineEnd)
            }
            lineStart = lineEnd + 1
        }
        return nil
    }

    private static func filterData(_ event: [UInt8], _ data: Range<Int>) -> [UInt8]? {
        var walker = BodyRewrite.Walker(Array(event[data]))
        guard let members = try? walker.members(at: 0),
              let k = members.firstIndex(where: { $0.key == Array("usage".utf8) }) else { return nil }
        let choices = members.first { $0.key == Array("choices".utf8) }
        if let choices, walker.kind(at: choices.value.lowerBound) == .array,
           (try? walker.arrayIsEmpty(at: choices.value.lowerBound)) == true {
            return []  // the usage-only event
        }
        // Take the member out with the comma that separates it from its neighbour.
        let remove: Range<Int>
        if k > 0 {
            remove = members[k - 1].value.upperBound..<members[k].value.upperBound
        } else if members.count > 1 {
            remove = members[0].keyStart..<members[1].keyStart
        } else {
            remove = members[0].keyStart..<members[0].value.upperBound
        }
        var out: [UInt8] = []
        out.reserveCapacity(event.count)
        out.append(contentsOf: event[..<(data.lowerBound + remove.lowerBound)])
        out.append(contentsOf: event[(data.lowerBound + remove.upperBound)...])
        return out
    }
}
