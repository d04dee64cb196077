/// One unlabelled series whose value lives outside `MetricCounters` (the limiters', the authenticator's, the log
/// writer's), read at scrape time and rendered with its `# HELP` and `# TYPE` lines.
struct MetricValue {
    /// Prometheus metric types this server exposes for such values.
    enum Kind: String {
        /// Only goes up while the process runs; the name ends in `_total`.
        case counter
        /// Goes up and down.
        case gauge
    }

    let name: String
    let help: String
    let kind: Kind
    let value: Double

    static func gauge(_ name: String, _ help: String, _ value: Double) -> MetricValue {
        MetricValue(name: name, help: help, kind: .gauge, value: value)
    }

    static func counter(_ name: String, _ help: String, _ value: Double) -> MetricValue {
        precondition(name.hasSuffix("_total"), "a counter's name ends in _total")
        return MetricValue(name: name, help: help, kind: .counter, value: value)
    }

    /// `# HELP`, `# TYPE` and the sample line.
    var text: String {
        "# HELP \(name) \(help)\n# TYPE \(name) \(kind.rawValue)\n\(name) \(MetricValue.format(value))\n"
    }

    /// A sample value as Prometheus clients print it: integers without a fraction.
    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}
