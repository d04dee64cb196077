import Testing
@testable import Tollgate

/// The `process_*` series: `/proc/self/stat` read by field position after the command name, and rendered with
/// Prometheus's standard names, types and units.
@Suite struct ObserveProcessMetricsTests {
    // A real line's shape, with a command name holding spaces and parentheses.
    static let line = "4242 (tollgate (x) y) S 1 4242 4242 0 -1 4194560 1200 0 0 0 250 150 0 0 20 0 5 0 "
        + "123400 987654321 2048 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n"

    @Test func fieldsAreCountedFromTheLastParenthesis() throws {
        let stat = try #require(ProcessMetrics.parse(Array(Self.line.utf8)))
        #expect(stat == ProcessMetrics.Stat(userTicks: 250, systemTicks: 150, startTicks: 123_400,
                                            virtualBytes: 987_654_321, residentPages: 2048))
        #expect(ProcessMetrics.parse(Array("garbage".utf8)) == nil)
        #expect(ProcessMetrics.parse(Array("1 (x) S 1 2".utf8)) == nil)
    }

    @Test func seriesHaveTheStandardNamesTypesAndUnits() throws {
        let stat = try #require(ProcessMetrics.parse(Array(Self.line.utf8)))
        let text = ProcessMetrics.render(stat: stat, openFDs: 12, maxFDs: 1024, ticks: 100, pageSize: 4096,
                                         bootTime: 1_700_000_000)
        #expect(text.contains("# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 4\n"))
        #expect(text.contains("# TYPE process_open_fds gauge\nprocess_open_fds 12\n"))
        #expect(text.contains("# TYPE process_max_fds gauge\nprocess_max_fds 1024\n"))
        #expect(text.contains("# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes 987654321\n"))
        #expect(text.contains("# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 8388608\n"))
        #expect(text.contains("# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds 1700001234\n"))
    }

    @Test func anUnreadableSourceLeavesItsSeriesOut() {
        let text = ProcessMetrics.render(stat: nil, openFDs: nil, maxFDs: nil, ticks: 100, pageSize: 4096, bootTime: nil)
        #expect(text.isEmpty)
    }
}
