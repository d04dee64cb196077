import TollgateIO

/// The standard `process_*` series every Prometheus client library exports (CPU time, memory, descriptors, start
/// time), with the names, types and help texts of Prometheus's Go client, so the usual dashboards and alerts work
/// unchanged. Read from procfs at scrape time (`ProcFS`); a series whose source cannot be read is left out.
enum ProcessMetrics {
    /// The fields of `/proc/self/stat` these series use (proc(5)), in their own units.
    struct Stat: Equatable {
        /// Fields 14 and 15: user and system CPU time, in clock ticks.
        var userTicks: UInt64
        var systemTicks: UInt64
        /// Field 22: when the process started, in clock ticks after boot.
        var startTicks: UInt64
        /// Field 23: virtual memory size, in bytes.
        var virtualBytes: UInt64
        /// Field 24: resident set size, in pages.
        var residentPages: UInt64
    }

    /// The exposition text for this process now.
    static func text() -> String {
        let stat = ProcFS.selfStat().flatMap(parse)
        return render(stat: stat, openFDs: ProcFS.openDescriptors(), maxFDs: ProcFS.descriptorLimit(),
                      ticks: ProcFS.clockTicks, pageSize: ProcFS.pageSize, bootTime: ProcFS.bootTime)
    }

    /// The exposition text for the values given (nil: that series is left out).
    static func render(stat: Stat?, openFDs: Int?, maxFDs: UInt64?, ticks: Int, pageSize: Int, bootTime: Int?) -> String {
        var values: [MetricValue] = []
        if let stat {
            values.append(.counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                                   Double(stat.userTicks + stat.systemTicks) / Double(ticks)))
        }
        if let openFDs {
            values.append(.gauge("process_open_fds", "Number of open file descriptors.", Double(openFDs)))
        }
        if let maxFDs {
            values.append(.gauge("process_max_fds", "Maximum number of open file descriptors.", Double(maxFDs)))
        }
        if let stat {
            values.append(.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", Double(stat.virtualBytes)))
            values.append(.gauge("process_resident_memory_bytes", "Resident memory size in bytes.",
                                 Double(stat.residentPages) * Double(pageSize)))
            if let bootTime {
                values.append(.gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
                                     Double(bootTime) + Double(stat.startTicks) / Double(ticks)))
            }
        }
        return values.map(\.text).joined()
    }

    /// The fields of a `/proc/self/stat` line, or nil when it is not one. The command name (field 2) is in
    /// parentheses and may itself hold spaces and parentheses, so fields are counted from the last `)`.
    static func parse(_ bytes: [UInt8]) -> Stat? {
        guard let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        // After the name: field 3 (state) onwards, one space apart.
        let fields = bytes[(close + 1)...].split(separator: UInt8(ascii: " "), omittingEmptySubsequences: true)
        func field(_ n: Int) -> UInt64? {
            let i = n - 3
            guard i < fields.count else { return nil }
            return UInt64(String(decoding: fields[fields.startIndex + i], as: UTF8.self))
        }
        guard let utime = field(14), let stime = field(15), let start = field(22), let vsize = field(23),
              let rss = field(24) else { return nil }
        return Stat(userTicks: utime, systemTicks: stime, startTicks: start, virtualBytes: vsize, residentPages: rss)
    }
}
