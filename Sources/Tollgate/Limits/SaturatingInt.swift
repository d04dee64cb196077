/// Sums and conversions that stop at `Int`'s bounds instead of trapping: token counts come from what a backend
/// reports (the usage scanner keeps up to 15 digits per count), and a few thousand of the largest would overflow
/// a plain sum. Used wherever such counts are added (the quota book, the status page's history) or a `Double`
/// built from them becomes an `Int` again.
extension Int {
    /// `self + other`, `Int.max` or `Int.min` where it would overflow.
    func saturatingAdd(_ other: Int) -> Int {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : sum
    }

    /// `self - other`, clamped as `saturatingAdd` is.
    func saturatingSubtract(_ other: Int) -> Int {
        let (difference, overflow) = subtractingReportingOverflow(other)
        return overflow ? (other < 0 ? .max : .min) : difference
    }

    /// `value` rounded toward zero and clamped to `Int`'s range; 0 for NaN.
    init(clamping value: Double) {
        if value.isNaN {
            self = 0
        } else if value >= 9_223_372_036_854_775_807.0 {
            self = .max
        } else if value <= -9_223_372_036_854_775_808.0 {
            self = .min
        } else {
            self = Int(value)
        }
    }
}

extension Sequence where Element == Int {
    /// The sum, clamped to `Int`'s range.
    func saturatingSum() -> Int { reduce(0) { $0.saturatingAdd($1) } }
}
