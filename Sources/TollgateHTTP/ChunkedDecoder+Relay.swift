extension ChunkedDecoder {
    /// Decodes buffer[start..<end] like `decode` and appends to `out` the body as a proxy relays it: every byte as it
    /// came (chunk-size lines with their extensions, data, CRLFs, the last-chunk line) except the trailer section,
    /// which is dropped and replaced, once the body ends, by the bare CRLF of an empty one. Returns the bytes
    /// consumed, as `decode` does; on a refusal nothing of this call's bytes is appended.
    ///
    /// Trailer fields are not checked against what a response head may carry (an upstream's
    /// Strict-Transport-Security or Set-Cookie would reach the client past every head filter), and nothing a client
    /// of an inference API needs comes in them, so none is forwarded: what nginx does for an HTTP/1.1 client.
    /// Everything before the trailer section goes out in the call that read it, so a stream is never held back; the
    /// per-byte work is `decode`'s alone.
    public mutating func relay(_ buffer: [UInt8], from start: Int, to end: Int, into out: inout [UInt8],
                               onData: (Range<Int>) -> Void) throws(HTTPParseError) -> Int {
        let trailerBefore = trailerBytes
        let consumed = try decode(buffer, from: start, to: end, onData: onData)
        // The trailer section is the end of the body: the trailer bytes this call read are the last it consumed.
        let trailerRead = trailerBytes &- trailerBefore
        out.append(contentsOf: buffer[start..<(start &+ consumed &- trailerRead)])
        // The final LF is a trailer byte, so a body that ended before this call read none here.
        if state == .done && trailerRead > 0 { HTTPWriter.appendCRLF(to: &out) }
        return consumed
    }
}
