extension Timeline {
    /// At most `maxPoints` points, keeping the shape and never losing the peak.
    ///
    /// The time range is cut into equal buckets; each bucket keeps its lowest-total and its
    /// highest-total point (in time order), and the first and last points are always kept.
    /// The highest point of the whole timeline is the highest of its bucket, so it survives
    /// with its exact value and its per-category breakdown. Spans are kept as they are.
    /// `maxPoints` below 4 is treated as 4 (first, last, one bucket's low and high).
    public func downsampled(maxPoints: Int) -> Timeline {
        let maxPoints = max(maxPoints, 4)
        guard count > maxPoints else { return self }
        let bucketCount = (maxPoints - 2) / 2
        let start = startNanos
        let span = max(durationNanos, 1)

        var keep = [Bool](repeating: false, count: count)
        keep[0] = true
        keep[count - 1] = true
        var lowest = [Int](repeating: -1, count: bucketCount)
        var highest = [Int](repeating: -1, count: bucketCount)
        for i in 0..<count {
            // Multiply in floating point: ns offsets times bucket counts can overflow 64 bits.
            let offset = Double(timeNanos[i] - start) / Double(span)
            let bucket = min(bucketCount - 1, Int(offset * Double(bucketCount)))
            if lowest[bucket] < 0 || total[i] < total[lowest[bucket]] { lowest[bucket] = i }
            if highest[bucket] < 0 || total[i] > total[highest[bucket]] { highest[bucket] = i }
        }
        for i in lowest where i >= 0 { keep[i] = true }
        for i in highest where i >= 0 { keep[i] = true }

        var result = Timeline(timeNanos: [], total: [], categories: CategorySeries(), spans: spans,
                              sourceEventCount: sourceEventCount, droppedEvents: droppedEvents)
        for i in 0..<count where keep[i] {
            result.timeNanos.append(timeNanos[i])
            result.total.append(total[i])
            result.categories.append(categories.values.map { $0[i] })
        }
        return result
    }
}
