import Foundation

/// What a Responses API answer repeats from its request (instructions, tools, text format, sampling settings…), and
/// the two ways Ollama writes the response object: the complete one as a Go struct (fields in declaration order,
/// openai/responses.go `ResponsesResponse`) and the streamed one as a Go map (keys sorted).
struct ResponseEcho {
    /// The `output` of a streamed response object.
    enum StreamedOutput {
        /// `[]`: nothing produced yet.
        case empty
        /// `null`: finished without any item (Go's nil slice).
        case none
        /// One finished message with this text.
        case message(String)
    }

    let instructions: String?
    let truncation: String
    let tools: [[String: Any]]
    let textFormat: [String: Any]?
    let topP: Double
    let temperature: Double
    let effort: String?
    let summary: String?
    let maxOutputTokens: Int?
    let background: Bool

    init(_ body: RequestBody) {
        instructions = body.string("instructions").flatMap { $0.isEmpty ? nil : $0 }
        truncation = body.string("truncation") ?? "disabled"
        tools = (body.array("tools") ?? []).compactMap { $0 as? [String: Any] }
        textFormat = body.nested("text")?.nested("format")?.object
        topP = Self.double(body.object["top_p"]) ?? 1
        temperature = Self.double(body.object["temperature"]) ?? 1
        let reasoning = body.nested("reasoning")
        effort = reasoning?.string("effort").flatMap { $0.isEmpty ? nil : $0 }
        summary = reasoning?.string("summary").flatMap { $0.isEmpty ? nil : $0 }
        maxOutputTokens = body.int("max_output_tokens")
        background = body.bool("background") ?? false
    }

    private static func double(_ value: Any?) -> Double? {
        guard let n = value as? NSNumber, !RequestBody.isBool(n) else { return nil }
        return n.doubleValue
    }

    /// A JSON `true`/`false` (not a number that Foundation would also bridge to `Bool`).
    static func bool(_ value: Any?) -> Bool? {
        guard let n = value as? NSNumber, RequestBody.isBool(n) else { return nil }
        return n.boolValue
    }

    /// The complete response (`"stream": false`).
    func writeComplete(_ w: inout JSONWriter, model: String, createdAt: Int, text: String, input: Int, output: Int) {
        w.beginObject()
        w.key("id"); w.string(Router.responseID)
        w.key("object"); w.string("response")
        w.key("created_at"); w.int(createdAt)
        w.key("completed_at"); w.int(createdAt)
        w.key("status"); w.string("completed")
        w.key("incomplete_details"); w.null()
        w.key("model"); w.string(model)
        w.key("previous_response_id"); w.null()
        w.key("instructions"); if let instructions { w.string(instructions) } else { w.null() }
        w.key("output"); w.beginArray(); w.beginObject()
        w.key("id"); w.string(Router.responseItemID)
        w.key("type"); w.string("message")
        w.key("status"); w.string("completed")
        w.key("role"); w.string("assistant")
        w.key("content"); w.beginArray(); w.beginObject()
        w.key("type"); w.string("output_text")
        w.key("text"); w.string(text)
        w.key("annotations"); w.beginArray(); w.endArray()
        w.key("logprobs"); w.beginArray(); w.endArray()
        w.endObject(); w.endArray()
        w.endObject(); w.endArray()
        w.key("error"); w.null()
        w.key("tools"); w.beginArray()
        for tool in tools { Self.writeToolStruct(&w, tool) }
        w.endArray()
        w.key("tool_choice"); w.string("auto")
        w.key("truncation"); w.string(truncation)
        w.key("parallel_tool_calls"); w.bool(true)
        w.key("text"); w.beginObject()
        w.key("format"); w.beginObject()
        w.key("type"); w.string(textFormat?["type"] as? String ?? "text")
        if let name = textFormat?["name"] as? String, !name.isEmpty { w.key("name"); w.string(name) }
        if let schema = textFormat?["schema"] { w.key("schema"); w.any(schema) }
        if let strict = Self.bool(textFormat?["strict"]) { w.key("strict"); w.bool(strict) }
        w.endObject()
        w.endObject()
        w.key("top_p"); w.double(topP)
        w.key("presence_penalty"); w.int(0)
        w.key("frequency_penalty"); w.int(0)
        w.key("top_logprobs"); w.int(0)
        w.key("temperature"); w.double(temperature)
        w.key("reasoning")
        if effort == nil && summary == nil {
            w.null()
        } else {
            w.beginObject()
            if let effort { w.key("effort"); w.string(effort) }
            if let summary { w.key("summary"); w.string(summary) }
            w.endObject()
        }
        w.key("usage"); w.beginObject()
        w.key("input_tokens"); w.int(input)
        w.key("output_tokens"); w.int(output)
        w.key("total_tokens"); w.int(input + output)
        w.key("input_tokens_details"); w.beginObject(); w.key("cached_tokens"); w.int(0); w.endObject()
        w.key("output_tokens_details"); w.beginObject(); w.key("reasoning_tokens"); w.int(0); w.endObject()
        w.endObject()
        w.key("max_output_tokens"); if let maxOutputTokens { w.int(maxOutputTokens) } else { w.null() }
        w.key("max_tool_calls"); w.null()
        w.key("store"); w.bool(false)
        w.key("background"); w.bool(background)
        w.key("service_tier"); w.string("default")
        w.key("metadata"); w.beginObject(); w.endObject()
        w.key("safety_identifier"); w.null()
        w.key("prompt_cache_key"); w.null()
        w.endObject()
    }

    /// The response object of a streamed event (`response.created` … `response.completed`).
    func writeStreamed(_ w: inout JSONWriter, model: String, createdAt: Int, completedAt: Int?, status: String,
                       output: StreamedOutput, usage: (input: Int, output: Int)?) {
        w.beginObject()
        w.key("background"); w.bool(background)
        w.key("completed_at"); if let completedAt { w.int(completedAt) } else { w.null() }
        w.key("created_at"); w.int(createdAt)
        w.key("error"); w.null()
        w.key("frequency_penalty"); w.int(0)
        w.key("id"); w.string(Router.responseID)
        w.key("incomplete_details"); w.null()
        w.key("instructions"); if let instructions { w.string(instructions) } else { w.null() }
        w.key("max_output_tokens"); if let maxOutputTokens { w.int(maxOutputTokens) } else { w.null() }
        w.key("max_tool_calls"); w.null()
        w.key("metadata"); w.beginObject(); w.endObject()
        w.key("model"); w.string(model)
        w.key("object"); w.string("response")
        w.key("output")
        switch output {
        case .empty: w.beginArray(); w.endArray()
        case .none: w.null()
        case .message(let text): w.beginArray(); Router.streamedMessageItem(&w, text); w.endArray()
        }
        w.key("parallel_tool_calls"); w.bool(true)
        w.key("presence_penalty"); w.int(0)
        w.key("previous_response_id"); w.null()
        w.key("prompt_cache_key"); w.null()
        w.key("reasoning")
        if effort == nil && summary == nil {
            w.null()
        } else {
            w.beginObject()
            w.key("effort"); if let effort { w.string(effort) } else { w.null() }
            w.key("summary"); if let summary { w.string(summary) } else { w.null() }
            w.endObject()
        }
        w.key("safety_identifier"); w.null()
        w.key("service_tier"); w.string("default")
        w.key("status"); w.string(status)
        w.key("store"); w.bool(false)
        w.key("temperature"); w.double(temperature)
        w.key("text"); w.beginObject()
        w.key("format"); w.beginObject()
        if let name = textFormat?["name"] as? String, !name.isEmpty { w.key("name"); w.string(name) }
        if let schema = textFormat?["schema"] { w.key("schema"); w.any(schema) }
        if let strict = Self.bool(textFormat?["strict"]) { w.key("strict"); w.bool(strict) }
        w.key("type"); w.string(textFormat?["type"] as? String ?? "text")
        w.endObject()
        w.endObject()
        w.key("tool_choice"); w.string("auto")
        w.key("tools"); w.beginArray()
        for tool in tools {
            w.beginObject()
            w.key("description"); w.any(tool["description"] as? String)
            w.key("name"); w.string(tool["name"] as? String ?? "")
            w.key("parameters"); w.any(tool["parameters"] as? [String: Any])
            w.key("strict"); w.any(Self.bool(tool["strict"]))
            w.key("type"); w.string(tool["type"] as? String ?? "")
            w.endObject()
        }
        w.endArray()
        w.key("top_logprobs"); w.int(0)
        w.key("top_p"); w.double(topP)
        w.key("truncation"); w.string(truncation)
        w.key("usage")
        if let usage {
            w.beginObject()
            w.key("input_tokens"); w.int(usage.input)
            w.key("input_tokens_details"); w.beginObject(); w.key("cached_tokens"); w.int(0); w.endObject()
            w.key("output_tokens"); w.int(usage.output)
            w.key("output_tokens_details"); w.beginObject(); w.key("reasoning_tokens"); w.int(0); w.endObject()
            w.key("total_tokens"); w.int(usage.input + usage.output)
            w.endObject()
        } else {
            w.null()
        }
        w.endObject()
    }

    /// A tool as Ollama's `ResponsesTool` struct writes it back.
    private static func writeToolStruct(_ w: inout JSONWriter, _ tool: [String: Any]) {
        w.beginObject()
        w.key("type"); w.string(tool["type"] as? String ?? "")
        w.key("name"); w.string(tool["name"] as? String ?? "")
        w.key("description"); w.any(tool["description"] as? String)
        w.key("strict"); w.any(Self.bool(tool["strict"]))
        w.key("parameters"); w.any(tool["parameters"] as? [String: Any])
        if let members = tool["tools"] as? [Any], !members.isEmpty {
            w.key("tools"); w.beginArray()
            for case let m as [String: Any] in members { writeToolStruct(&w, m) }
            w.endArray()
        }
        w.endObject()
    }
}
