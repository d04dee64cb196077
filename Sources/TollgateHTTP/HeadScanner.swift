/// The grammar shared by request and response heads: the start line's end and the header field block.
///
/// Stateless: every call rescans from the given index, picohttpparser-style. `headLimit` is the first index the
/// head may not reach (`start + maxHeadBytes`); needing a byte there means the head is too long (431), needing one
/// past the buffered `end` means more input is needed.
struct HeadScanner {
    /// The caller's buffer.
    let buffer: [UInt8]
    /// One past the last buffered byte.
    let end: Int
    /// The first index the head may not reach.
    let headLimit: Int

    /// Result of scanning one part of a head.
    enum Step: Equatable {
        /// The part ends here: the index just after its terminating CRLF (or the line's CR for `findLineEnd`).
        case done(Int)
        /// The buffer ends before the part does.
        case needMore
        /// The part is refused.
        case invalid(HTTPParseError)
    }

    /// A refusal with `status` and `reason`.
    static func error(_ status: Int, _ reason: String) -> Step {
        .invalid(HTTPParseError(status: status, reason: reason))
    }

    /// What running out of bytes at index `i` means.
    func exhausted(at i: Int) -> Step {
        i >= headLimit ? Self.error(431, "Request header fields too large") : .needMore
    }

    /// Checks that the byte after the CR at `cr` is LF. Returns `.done(cr + 2)`.
    func expectLF(afterCR cr: Int) -> Step {
        let next = cr &+ 1
        guard next < end && next < headLimit else { return exhausted(at: next) }
        guard buffer[next] == ASCII.lf else { return Self.error(400, "Bare CR in head") }
        return .done(next &+ 1)
    }

    /// Skips up to `maxEmptyLines` CRLFs starting at `start` (RFC 9112 2.2). Returns `.done(firstNonEmptyIndex)`.
    func skipEmptyLines(from start: Int, maxEmptyLines: Int) -> Step {
        var i = start
        var skipped = 0
        while true {
            guard i < end && i < headLimit else { return exhausted(at: i) }
            switch buffer[i] {
            case ASCII.cr:
                guard skipped < maxEmptyLines else { return Self.error(400, "Too many empty lines before request") }
                switch expectLF(afterCR: i) {
                case .done(let next): i = next
                case let other: return other
                }
                skipped &+= 1
            case ASCII.lf:
                return Self.error(400, "Bare LF in head")
            default:
                return .done(i)
            }
        }
    }

    /// Finds the CR ending the start line that begins at `lineStart`, refusing control bytes on the way.
    /// `allowTextBytes` admits HTAB and obs-text (status lines' reason phrase); request lines allow only SP and
    /// VCHAR. A line longer than `maxLine` bytes is refused with `longLineStatus` once its next byte is buffered.
    func findLineEnd(from lineStart: Int, maxLine: Int, longLineStatus: Int, allowTextBytes: Bool) -> Step {
        var i = lineStart
        while i < end && i < headLimit {
            let b = buffer[i]
            if b == ASCII.cr { return .done(i) }
            if i &- lineStart >= maxLine {
                return Self.error(longLineStatus, longLineStatus == 414 ? "URI too long" : "Start line too long")
            }
            if b == ASCII.lf { return Self.error(400, "Bare LF in head") }
            if b == 0 { return Self.error(400, "NUL in head") }
            let allowed = allowTextBytes ? ASCII.isFieldValueByte(b) : (b >= ASCII.sp && b < 0x7F)
            if !allowed { return Self.error(400, "Invalid byte in start line") }
            i &+= 1
        }
        return exhausted(at: i)
    }

    /// Scans header fields from `start` through the empty line, appending them to `headers`.
    /// Returns `.done(indexAfterFinalCRLF)`.
    func scanFields(from start: Int, maxCount: Int, into headers: inout [HeaderField]) -> Step {
        // The bytes are read through a span: its bounds are checked against a count held in hand, not the array's.
        let stop = min(end, headLimit, buffer.count)
        let bytes = buffer.span
        var i = start
        while true {
            guard i < stop else { return exhausted(at: i) }
            let first = bytes[i]
            if first == ASCII.cr { return expectLF(afterCR: i) }
            if first == ASCII.lf { return Self.error(400, "Bare LF in head") }
            if ASCII.isOWS(first) { return Self.error(400, "Obsolete line folding") }
            guard headers.count < maxCount else { return Self.error(431, "Too many header fields") }
            switch scanField(bytes, at: i, stop: stop) {
            case .field(let field, let next):
                headers.append(field)
                i = next
            case .step(let step):
                return step
            }
        }
    }

    private enum FieldStep {
        case field(HeaderField, next: Int)
        case step(Step)
    }

    /// Scans one `name ":" OWS value OWS CRLF` line starting at `lineStart`; `stop` is at most `bytes.count`.
    private func scanField(_ bytes: borrowing Span<UInt8>, at lineStart: Int, stop: Int) -> FieldStep {
        var i = lineStart
        while i < stop && ASCII.isTchar(bytes[i]) { i &+= 1 }
        guard i < stop else { return .step(exhausted(at: i)) }
        let nameEnd = i
        let b = bytes[i]
        guard b == ASCII.colon else {
            if ASCII.isOWS(b) { return .step(Self.error(400, "Whitespace before colon in header")) }
            if b == 0 { return .step(Self.error(400, "NUL in head")) }
            if b == ASCII.lf { return .step(Self.error(400, "Bare LF in head")) }
            return .step(Self.error(400, "Invalid header name"))
        }
        guard nameEnd > lineStart else { return .step(Self.error(400, "Empty header name")) }
        i &+= 1
        while i < stop && ASCII.isOWS(bytes[i]) { i &+= 1 }
        let valueStart = i
        i = Self.skipPlainValueBytes(bytes, from: i, stop: stop)
        while i < stop {
            let v = bytes[i]
            if v == ASCII.cr { break }
            if !ASCII.isFieldValueByte(v) {
                if v == 0 { return .step(Self.error(400, "NUL in head")) }
                if v == ASCII.lf { return .step(Self.error(400, "Bare LF in head")) }
                return .step(Self.error(400, "Control character in header value"))
            }
            i &+= 1
        }
        guard i < stop else { return .step(exhausted(at: i)) }
        switch expectLF(afterCR: i) {
        case .done(let next):
            var valueEnd = i
            while valueEnd > valueStart && ASCII.isOWS(bytes[valueEnd &- 1]) { valueEnd &-= 1 }
            let name = lineStart..<nameEnd
            let field = HeaderField(name: name, value: valueStart..<valueEnd, kind: HeaderKind.recognize(bytes, name))
            return .field(field, next: next)
        case let other:
            return .step(other)
        }
    }

    /// The index of the first byte at or after `from` that is not SP, VCHAR or obs-text, or of a byte among
    /// the last 7 before `stop`: eight bytes at a time, so the byte-by-byte loop after it only sees the value's
    /// end (CR, HTAB, a control byte, DEL) and a short tail. Every byte it skips is one that loop would have
    /// accepted (0x20-0x7E, 0x80-0xFF).
    @inline(__always)
    static func skipPlainValueBytes(_ bytes: borrowing Span<UInt8>, from: Int, stop: Int) -> Int {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        var i = from
        // One bounds-checked load of eight bytes (its `unsafe` is about the type loaded, and any bits are a valid
        // UInt64), byte k in bits 8k to 8k+7 on every host.
        let raw = bytes.bytes
        while i &+ 8 <= stop {
            let word = UInt64(littleEndian: raw.unsafeLoadUnaligned(fromByteOffset: i, as: UInt64.self))
            // A byte below 0x20 (controls, HTAB, CR, LF, NUL), and a byte equal to 0x7F: the standard
            // "has less than" and "has zero" tests, exact as a yes/no for the word.
            let below = (word &- ones &* 0x20) & ~word & highs
            let del = word ^ (ones &* 0x7F)
            let hasDel = (del &- ones) & ~del & highs
            let found = below | hasDel
            // The lowest flagged byte is exact (a borrow can flag only bytes above a true one): every byte before
            // it is plain.
            if found != 0 { return i &+ (found.trailingZeroBitCount &>> 3) }
            i &+= 8
        }
        return i
    }
}
