import TollgateIO
import Testing

@Suite("Shared: RESP2 parser")
struct SharedRESPParserTests {
    let parser = RESPParser()

    func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    func parseWhole(_ s: String, _ p: RESPParser? = nil) -> RESPParser.Result {
        (p ?? parser).parse(bytes(s))
    }

    static let samples: [(String, RESPValue)] = [
        ("+OK\r\n", .simpleString("OK")),
        ("+\r\n", .simpleString("")),
        ("-ERR unknown command 'FOO'\r\n", .error("ERR unknown command 'FOO'")),
        ("-NOSCRIPT No matching script.\r\n", .error("NOSCRIPT No matching script.")),
        (":0\r\n", .integer(0)),
        (":-42\r\n", .integer(-42)),
        (":9223372036854775807\r\n", .integer(Int64.max)),
        ("$3\r\nfoo\r\n", .bulkString(Array("foo".utf8))),
        ("$0\r\n\r\n", .bulkString([])),
        ("$4\r\na\r\nb\r\n", .bulkString(Array("a\r\nb".utf8))),
        ("$-1\r\n", .bulkString(nil)),
        ("*0\r\n", .array([])),
        ("*-1\r\n", .array(nil)),
        ("*3\r\n:1\r\n$-1\r\n+x\r\n", .array([.integer(1), .bulkString(nil), .simpleString("x")])),
        ("*2\r\n*2\r\n:1\r\n:2\r\n*1\r\n*-1\r\n", .array([.array([.integer(1), .integer(2)]), .array([.array(nil)])])),
        ("*2\r\n$10\r\n1700000000\r\n$6\r\n123456\r\n", .array([.bulkString(Array("1700000000".utf8)), .bulkString(Array("123456".utf8))])),
    ]

    @Test func wholeValues() {
        for (wire, value) in Self.samples {
            #expect(parseWhole(wire) == .complete(value, consumed: wire.utf8.count), "\(wire.debugDescription)")
        }
    }

    @Test func everySplitPointNeedsMoreThenCompletes() {
        for (wire, value) in Self.samples {
            let b = bytes(wire)
            for cut in 0..<b.count {
                #expect(parser.parse(b, from: 0, to: cut) == .needMore, "\(wire.debugDescription) cut at \(cut)")
            }
            #expect(parser.parse(b, from: 0, to: b.count) == .complete(value, consumed: b.count))
        }
    }

    @Test func pipelinedRepliesParseOneAfterAnotherAtAnyOffset() {
        let wire = Self.samples.map(\.0).joined()
        let b = bytes(wire)
        var offset = 0
        var values: [RESPValue] = []
        while offset < b.count {
            guard case .complete(let v, let n) = parser.parse(b, from: offset) else {
                Issue.record("stuck at \(offset)"); return
            }
            values.append(v)
            offset += n
        }
        #expect(values == Self.samples.map(\.1))
        // Every prefix of the stream yields exactly the values wholly inside it.
        for cut in 0...b.count {
            var o = 0
            var n = 0
            while case .complete(_, let used) = parser.parse(b, from: o, to: cut) { o += used; n += 1 }
            var end = 0
            var whole = 0
            for s in Self.samples {
                end += s.0.utf8.count
                if end <= cut { whole += 1 } else { break }
            }
            #expect(n == whole, "cut \(cut)")
        }
    }

    @Test(arguments: [
        "?x\r\n",              // unknown type
        "+OK\n",               // bare LF
        "+O\rK\r\n",           // CR without LF
        ":\r\n",               // empty integer
        ":+1\r\n",             // plus sign
        ":01\r\n",             // leading zero
        ":-0\r\n",             // negative zero
        ":1a\r\n",
        ":99999999999999999999\r\n",  // overflow
        "$-2\r\n",
        "$3\r\nfooX\r\n",      // no CRLF after data
        "$3\r\nfoo\rX",
        "$ 3\r\nfoo\r\n",
        "*-2\r\n",
        "*1\r\n!\r\n",
    ])
    func malformedIsInvalid(_ wire: String) {
        guard case .invalid = parseWhole(wire) else {
            Issue.record("accepted \(wire.debugDescription): \(parseWhole(wire))"); return
        }
    }

    @Test func limitsAreEnforced() {
        let small = RESPParser(maxBulkLength: 4, maxArrayCount: 2, maxDepth: 2, maxLineLength: 8)
        #expect(parseWhole("$4\r\nabcd\r\n", small) == .complete(.bulkString(Array("abcd".utf8)), consumed: 10))
        guard case .invalid = parseWhole("$5\r\n", small) else { Issue.record("bulk over limit"); return }
        guard case .invalid = parseWhole("*3\r\n", small) else { Issue.record("array over limit"); return }
        #expect(parseWhole("*1\r\n*1\r\n:1\r\n", small) == .complete(.array([.array([.integer(1)])]), consumed: 12))
        guard case .invalid = parseWhole("*1\r\n*1\r\n*1\r\n:1\r\n", small) else { Issue.record("depth over limit"); return }
        guard case .invalid = parseWhole("+123456789", small) else { Issue.record("line over limit"); return }
    }

    @Test func encoderWritesArraysOfBulkStrings() {
        #expect(RESPEncoder.encode([bytes("GET"), bytes("k")]) == bytes("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"))
        #expect(RESPEncoder.encode([]) == bytes("*0\r\n"))
        #expect(RESPEncoder.encode([[]]) == bytes("*1\r\n$0\r\n\r\n"))
        let big = [UInt8](repeating: 65, count: 1234)
        #expect(RESPEncoder.encode([big]) == bytes("*1\r\n$1234\r\n") + big + bytes("\r\n"))
    }

    @Test func urlParsing() throws {
        let plain = try #require(RedisConfiguration(url: "redis://127.0.0.1:6380"))
        #expect(plain.host == "127.0.0.1" && plain.port == 6380 && plain.password == nil && plain.database == 0)
        let full = try #require(RedisConfiguration(url: "redis://:s%40cret@10.0.0.5:7000/3"))
        #expect(full.password == "s@cret" && full.username == nil && full.database == 3 && full.port == 7000)
        let acl = try #require(RedisConfiguration(url: "redis://tollgate:pw@[::1]/2"))
        #expect(acl.username == "tollgate" && acl.password == "pw" && acl.host == "::1" && acl.port == 6379 && acl.database == 2)
        #expect(RedisConfiguration(url: "redis://redis.internal")?.host == "redis.internal")
        #expect(full.redactedURL == "redis://:***@10.0.0.5:7000/3")
        for bad in ["http://x:1", "redis://", "redis://h:0", "redis://h:99999", "redis://h:1/x", "redis://:%zz@h", "redis://[::1"] {
            #expect(RedisConfiguration(url: bad) == nil, "\(bad)")
        }
        #expect(try RedisConfiguration(url: "redis://localhost:1")!.resolve() == SocketAddress(parsing: "127.0.0.1:1"))
    }

    @Test func scriptSHA1MatchesRedis() {
        // redis-cli SCRIPT LOAD "return 1"
        #expect(RedisScript("return 1").sha1 == "e0e1f9fabfc9d4800c877a703b823ac0578ff8db")
    }
}
