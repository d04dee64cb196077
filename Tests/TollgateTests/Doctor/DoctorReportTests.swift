import Testing
@testable import Tollgate

/// The checklist as printed and as JSON, and the exit status.
@Suite struct DoctorReportTests {
    let checks = [
        DoctorCheck("configuration", .ok, "tollgate.conf: valid"),
        DoctorCheck("firewall", .warn, "ufw is installed but inactive", fix: "sudo ufw enable"),
        DoctorCheck("ollama exposure", .fail, "open\nsecond line", fix: "bind it\n[Service]"),
        DoctorCheck("clock", .skip, "cannot tell", fix: "never printed"),
    ]

    @Test func textHasAMarkPerLineAndTheFixUnderEachProblem() {
        #expect(DoctorReport.text(checks) == """
            ✓ configuration: tollgate.conf: valid
            ! firewall: ufw is installed but inactive
                fix: sudo ufw enable
            ✗ ollama exposure: open
                second line
                fix: bind it
                     [Service]
            - clock: cannot tell
            1 failed, 1 warning, 1 ok, 1 skipped

            """)
        #expect(DoctorReport.exitStatus(checks) == 1)
        #expect(DoctorReport.exitStatus(Array(checks.prefix(2))) == 0)
    }

    @Test func jsonIsOneObjectAScriptCanRead() throws {
        let text = DoctorReport.json(checks)
        #expect(text.hasSuffix("}\n"))
        let parsed = try #require(DoctorJSON.parse(Array(text.utf8)))
        #expect(parsed["ok"] == .bool(false))
        let items = try #require(parsed["checks"]?.arrayValue)
        #expect(items.count == 4)
        #expect(items[2]["status"]?.stringValue == "fail")
        #expect(items[2]["detail"]?.stringValue == "open\nsecond line")
        #expect(items[0]["fix"] == .null)
    }

    @Test func jsonReaderDecodesEscapesAndRefusesJunk() {
        let value = DoctorJSON.parse(Array(#"{"a":[1,2.5,true,null],"b":"\u00e9\ud83d\ude00\n"}"#.utf8))
        #expect(value?["b"]?.stringValue == "é😀\n")
        #expect(value?["a"]?.arrayValue?.count == 4)
        #expect(DoctorJSON.parse(Array("{\"a\":}".utf8)) == nil)
        #expect(DoctorJSON.parse(Array("[1] x".utf8)) == nil)
    }
}
