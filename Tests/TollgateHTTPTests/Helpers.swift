@testable import TollgateHTTP

/// The bytes of a string literal, for building wire input.
func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// The string a range of a buffer spells.
func text(_ buffer: [UInt8], _ range: Range<Int>) -> String { String(decoding: buffer[range], as: UTF8.self) }

/// Parses a whole request held in a string.
func parseRequest(_ s: String, limits: HTTPLimits = HTTPLimits()) -> (ParseResult, RequestHead, [UInt8]) {
    let buffer = bytes(s)
    var head = RequestHead()
    let result = RequestParser(limits: limits).parse(buffer, from: 0, to: buffer.count, into: &head)
    return (result, head, buffer)
}

/// The status of an `.invalid` result, or nil.
func status(_ result: ParseResult) -> Int? {
    if case .invalid(let error) = result { return error.status }
    return nil
}
