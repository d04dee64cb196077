/// Streaming chunked-body decoder; keeps state across calls so input may be split anywhere, byte by byte.
///
/// Strict (RFC 9112 7.1): chunk-size is 1 to 15 hex digits with nothing around it, extensions are
/// `;name[=token|quoted-string]` with no whitespace, every line ends in CRLF, trailer fields follow the header
/// field rules and are discarded. Every refusal is a 400; after one the decoder keeps refusing.
public struct ChunkedDecoder: Sendable {
    /// Where in the chunked grammar the next byte falls.
    enum State: Sendable, Equatable {
        case size, extNameStart, extName, extValueStart, extToken, extQuoted, extQuotedEscape, extAfterQuoted
        case lineLF, data, dataCR, dataLF
        case trailerLineStart, trailerName, trailerValue, trailerLF, finalLF
        case done, failed
    }

    /// Longest chunk-size line (with extensions, without CRLF) accepted.
    let maxChunkLineBytes: Int
    /// Longest trailer section (with its CRLFs) accepted.
    let maxTrailerBytes: Int
    /// The current position in the grammar.
    var state: State = .size
    /// Chunk size being read, then the data bytes of the current chunk still to come.
    var remaining = 0
    /// Hex digits read on the current chunk-size line.
    var digits = 0
    /// Bytes read on the current chunk-size line.
    var lineBytes = 0
    /// Bytes read of the trailer section.
    var trailerBytes = 0

    /// Creates a decoder positioned at the first chunk-size line.
    /// `maxChunkLineBytes` bounds a chunk-size line with its extensions (without CRLF); `maxTrailerBytes` bounds
    /// the trailer section including its CRLFs.
    public init(maxChunkLineBytes: Int = 4096, maxTrailerBytes: Int = 8192) {
        self.maxChunkLineBytes = maxChunkLineBytes
        self.maxTrailerBytes = maxTrailerBytes
    }

    /// True once the last chunk and the trailer section have been consumed.
    public var isDone: Bool { state == .done }

    /// Returns the decoder to its initial state, ready for the next body.
    public mutating func reset() {
        state = .size
        remaining = 0
        digits = 0
        lineBytes = 0
        trailerBytes = 0
    }

    /// Decodes buffer[start..<end]. Calls onData with the range of every data run found (possibly a partial chunk).
    /// Returns how many bytes it consumed (all of them unless the body ended inside the range: then it stops right
    /// after the final CRLF of the last-chunk/trailer section, so pipelined bytes that follow are left alone).
    public mutating func decode(_ buffer: [UInt8], from start: Int, to end: Int,
                                onData: (Range<Int>) -> Void) throws(HTTPParseError) -> Int {
        precondition(start >= 0 && start <= end && end <= buffer.count, "range outside the buffer")
        var i = start
        while i < end {
            switch state {
            case .done:
                return i &- start
            case .failed:
                throw HTTPParseError(status: 400, reason: "Chunked body already refused")
            case .data:
                let n = min(remaining, end &- i)
                onData(i..<(i &+ n))
                remaining &-= n
                i &+= n
                if remaining == 0 { state = .dataCR }
                continue
            case .trailerLineStart, .trailerName, .trailerValue, .trailerLF, .finalLF:
                trailerBytes &+= 1
                if trailerBytes > maxTrailerBytes { try fail("Trailer section too large") }
                try trailerByte(buffer[i])
            default:
                try lineByte(buffer[i])
            }
            i &+= 1
        }
        return i &- start
    }

    /// Marks the decoder failed and throws a 400 with `reason`.
    mutating func fail(_ reason: String) throws(HTTPParseError) -> Never {
        state = .failed
        throw HTTPParseError(status: 400, reason: reason)
    }

    /// Consumes one byte of a chunk-size line, or of the CRLF after chunk data.
    mutating func lineByte(_ b: UInt8) throws(HTTPParseError) {
        if b == ASCII.lf && state != .lineLF && state != .dataLF { try fail("Bare LF in chunked body") }
        if b != ASCII.cr && state != .lineLF && state != .dataCR && state != .dataLF {
            lineBytes &+= 1
            if lineBytes > maxChunkLineBytes { try fail("Chunk size line too long") }
        }
        switch state {
        case .size:
            if let v = ASCII.hexValue(b) {
                guard digits < 15 else { try fail("Chunk size too large") }
                remaining = remaining &<< 4 | v
                digits &+= 1
            } else if digits > 0 && (b == ASCII.semicolon || b == ASCII.cr) {
                state = b == ASCII.cr ? .lineLF : .extNameStart
            } else {
                try fail("Invalid chunk size")
            }
        case .extNameStart:
            guard ASCII.isTchar(b) else { try fail("Invalid chunk extension") }
            state = .extName
        case .extName, .extToken:
            if ASCII.isTchar(b) { return }
            if b == ASCII.equals && state == .extName {
                state = .extValueStart
            } else {
                try endOfExtension(b)
            }
        case .extValueStart:
            if ASCII.isTchar(b) {
                state = .extToken
            } else if b == ASCII.quote {
                state = .extQuoted
            } else {
                try fail("Invalid chunk extension")
            }
        case .extQuoted:
            if b == ASCII.quote {
                state = .extAfterQuoted
            } else if b == ASCII.backslash {
                state = .extQuotedEscape
            } else if !ASCII.isFieldValueByte(b) {
                try fail("Invalid chunk extension")
            }
        case .extQuotedEscape:
            guard ASCII.isFieldValueByte(b) else { try fail("Invalid chunk extension") }
            state = .extQuoted
        case .extAfterQuoted:
            try endOfExtension(b)
        case .lineLF:
            guard b == ASCII.lf else { try fail("Bare CR in chunked body") }
            lineBytes = 0
            digits = 0
            state = remaining == 0 ? .trailerLineStart : .data
        case .dataCR:
            guard b == ASCII.cr else { try fail("Missing CRLF after chunk data") }
            state = .dataLF
        case .dataLF:
            guard b == ASCII.lf else { try fail("Missing CRLF after chunk data") }
            state = .size
        default:
            try fail("Invalid chunked decoder state")
        }
    }

    /// After an extension's name or value: ";" starts another, CR ends the line.
    mutating func endOfExtension(_ b: UInt8) throws(HTTPParseError) {
        if b == ASCII.semicolon {
            state = .extNameStart
        } else if b == ASCII.cr {
            state = .lineLF
        } else {
            try fail("Invalid chunk extension")
        }
    }

    /// Consumes one byte of the trailer section, validating fields like header fields and discarding them.
    mutating func trailerByte(_ b: UInt8) throws(HTTPParseError) {
        if b == 0 { try fail("NUL in trailer") }
        if b == ASCII.lf && state != .trailerLF && state != .finalLF { try fail("Bare LF in chunked body") }
        switch state {
        case .trailerLineStart:
            if b == ASCII.cr {
                state = .finalLF
            } else if ASCII.isTchar(b) {
                state = .trailerName
            } else if ASCII.isOWS(b) {
                try fail("Obsolete line folding in trailer")
            } else {
                try fail("Invalid trailer field name")
            }
        case .trailerName:
            if b == ASCII.colon {
                state = .trailerValue
            } else if ASCII.isOWS(b) {
                try fail("Whitespace before colon in trailer")
            } else if !ASCII.isTchar(b) {
                try fail("Invalid trailer field name")
            }
        case .trailerValue:
            if b == ASCII.cr {
                state = .trailerLF
            } else if !ASCII.isFieldValueByte(b) {
                try fail("Control character in trailer")
            }
        case .trailerLF:
            guard b == ASCII.lf else { try fail("Bare CR in chunked body") }
            state = .trailerLineStart
        case .finalLF:
            guard b == ASCII.lf else { try fail("Bare CR in chunked body") }
            state = .done
        default:
            try fail("Invalid chunked decoder state")
        }
    }
}
