extension BodyRewrite {
    /// The images in an inference body, each of which a vision model turns into prompt tokens whatever its size in
    /// bytes (a few hundred bytes of PNG can cost thousands of tokens): the elements of an `images` array at the top
    /// (`/api/generate`) or in a message (`/api/chat`), and the content parts whose `type` is `image` (Anthropic,
    /// also inside a `tool_result`), `image_url` (OpenAI chat) or `input_image` (Responses), in `messages` or
    /// `input`. Keys are matched as Go folds them and every duplicate counts, so the count errs high. 0 for a body
    /// that does not parse (the phases before refuse it).
    ///
    /// Each array is walked once, each message and part once more: a few passes over the body, on the loop.
    static func imageCount(in body: [UInt8]) -> Int {
        var walker = Walker(body)
        guard !body.isEmpty, let top = try? walker.members(at: walker.firstNonSpace()) else { return 0 }
        var count = 0
        for m in top {
            guard let key = m.key else { continue }
            if GoFold.matches(key, ImageKeys.images) {
                count += arrayCount(m.value, walker: &walker)
            } else if GoFold.matches(key, ImageKeys.messages) || GoFold.matches(key, ImageKeys.input) {
                count += imagesInItems(m.value, depth: 0, walker: &walker)
            }
        }
        return count
    }

    private enum ImageKeys {
        static let images = Array("images".utf8)
        static let messages = Array("messages".utf8)
        static let input = Array("input".utf8)
        static let content = Array("content".utf8)
        static let type = Array("type".utf8)
        static let imageTypes: Set<String> = ["image", "image_url", "input_image"]
    }

    private static func arrayCount(_ value: Range<Int>, walker: inout Walker) -> Int {
        guard walker.kind(at: value.lowerBound) == .array else { return 0 }
        return (try? walker.elements(at: value.lowerBound).count) ?? 0
    }

    /// Images in an array of messages, input items or content parts (`depth`: content nested in a part, such as a
    /// tool result's, at most twice).
    private static func imagesInItems(_ value: Range<Int>, depth: Int, walker: inout Walker) -> Int {
        guard depth <= 2, walker.kind(at: value.lowerBound) == .array,
              let items = try? walker.elements(at: value.lowerBound) else { return 0 }
        var count = 0
        for item in items where walker.kind(at: item.lowerBound) == .object {
            guard let members = try? walker.members(at: item.lowerBound) else { continue }
            for m in members {
                guard let key = m.key else { continue }
                if GoFold.matches(key, ImageKeys.images) {
                    count += arrayCount(m.value, walker: &walker)
                } else if GoFold.matches(key, ImageKeys.content) {
                    count += imagesInItems(m.value, depth: depth + 1, walker: &walker)
                } else if GoFold.matches(key, ImageKeys.type), walker.kind(at: m.value.lowerBound) == .string,
                          let type = try? walker.decodedString(at: m.value.lowerBound, limit: 32),
                          ImageKeys.imageTypes.contains(type.lowercased()) {
                    count += 1
                }
            }
        }
        return count
    }
}
