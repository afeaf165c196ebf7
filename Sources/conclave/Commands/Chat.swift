import ArgumentParser
import AsyncHTTPClient
import ConclaveInference
import Foundation
import NIOCore

struct Chat: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Chat with a Conclave server over its HTTP API, streaming answers and keeping the conversation.",
        discussion: """
            Interactive by default: type a question, get a streamed answer with its citations; an empty \
            line or Ctrl-D quits. With --script FILE, sends each non-empty line of FILE as the next turn \
            of one conversation and prints each answer with its citations and agent trace.
            """)

    @Option(name: .long, help: "Base URL of the server.")
    var url: String = "http://127.0.0.1:8080"

    @Option(name: .long, help: "Workflow to use (conclave/single, conclave/planner-responder, conclave/planner-retriever-responder, conclave/full).")
    var model: String = "conclave/full"

    @Option(name: .long, help: "File of questions, one per line, sent as one conversation.")
    var script: String?

    @Flag(name: .long, help: "Print the agent trace after each answer (always on with --script).")
    var trace = false

    @Option(name: .long, help: "Bearer token sent as Authorization header.")
    var token: String?

    func run() async throws {
        let client = ChatClient(baseURL: url, model: model, token: token)
        if let script {
            guard let text = try? String(contentsOfFile: script, encoding: .utf8) else {
                throw ValidationFailure("cannot read script '\(script)'")
            }
            let questions = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty && !$0.hasPrefix("#") }
            var conversation: String?
            for (index, question) in questions.enumerated() {
                print("\n\u{1B}[1mTurn \(index + 1) — you:\u{1B}[0m \(question)")
                Terminal.write("\u{1B}[1mconclave:\u{1B}[0m ")
                let turn = try await client.send(question, conversation: conversation)
                conversation = turn.conversationID
                print("")
                printDetails(turn, trace: true)
            }
            return
        }
        var conversation: String?
        print("Conclave chat — \(model) at \(url). Empty line or Ctrl-D to quit.")
        while true {
            Terminal.write("\nyou> ")
            guard let line = readLine(), !line.trimmingCharacters(in: .whitespaces).isEmpty else { break }
            Terminal.write("conclave> ")
            do {
                let turn = try await client.send(line, conversation: conversation)
                conversation = turn.conversationID
                print("")
                printDetails(turn, trace: trace)
            } catch {
                print("\nerror: \(error)")
            }
        }
    }

    private func printDetails(_ turn: ChatClient.Turn, trace: Bool) {
        if turn.citations.isEmpty {
            print("  (no citations)")
        }
        for citation in turn.citations {
            print("  [\(citation.index)] \(citation.sourceID) — \(citation.title)")
        }
        if trace {
            let steps = turn.trace.map { step in
                "\(step.step)(\(step.role)) \(String(format: "%.0f", step.milliseconds)) ms, \(step.promptTokens)+\(step.completionTokens) tok"
            }
            print("  trace: " + steps.joined(separator: " → "))
        }
    }
}

/// A minimal streaming client of Conclave's chat API.
struct ChatClient {
    struct Citation: Decodable {
        var index: Int
        var sourceID: String
        var title: String
        enum CodingKeys: String, CodingKey { case index, title; case sourceID = "source_id" }
    }
    struct Step: Decodable {
        var step: String
        var role: String
        var milliseconds: Double
        var promptTokens: Int
        var completionTokens: Int
        enum CodingKeys: String, CodingKey {
            case step, role, milliseconds
            case promptTokens = "prompt_tokens"
            case completionTokens = "completion_tokens"
        }
    }
    struct Turn {
        var conversationID: String?
        var text = ""
        var citations: [Citation] = []
        var trace: [Step] = []
    }
    private struct Chunk: Decodable {
        struct Choice: Decodable { struct Delta: Decodable { var content: String? }; var delta: Delta? }
        struct Annotations: Decodable { var citations: [Citation]; var trace: [Step] }
        struct ErrorBody: Decodable { var message: String }
        var choices: [Choice]?
        var conversation_id: String?
        var conclave: Annotations?
        var error: ErrorBody?
    }

    let baseURL: String
    let model: String
    let token: String?

    func send(_ question: String, conversation: String?) async throws -> Turn {
        var request = HTTPClientRequest(url: baseURL + "/v1/chat/completions")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let conversation { request.headers.add(name: "X-Conclave-Conversation", value: conversation) }
        let body: [String: Any] = ["model": model, "stream": true, "messages": [["role": "user", "content": question]]]
        request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(600))
        guard response.status == .ok else {
            let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
            throw ValidationFailure("server answered \(response.status.code): \(text)")
        }
        var turn = Turn(conversationID: response.headers.first(name: "X-Conclave-Conversation"))
        var splitter = SSELineSplitter()
        for try await buffer in response.body {
            for line in splitter.append(buffer) where line.hasPrefix("data: ") {
                let payload = line.dropFirst(6)
                if payload == "[DONE]" { continue }
                guard let chunk = try? JSONDecoder().decode(Chunk.self, from: Data(payload.utf8)) else { continue }
                if let error = chunk.error { throw ValidationFailure("server error: \(error.message)") }
                if let id = chunk.conversation_id { turn.conversationID = id }
                if let text = chunk.choices?.first?.delta?.content, !text.isEmpty {
                    Terminal.write(text)
                    turn.text += text
                }
                if let annotations = chunk.conclave {
                    turn.citations = annotations.citations
                    turn.trace = annotations.trace
                }
            }
        }
        return turn
    }
}
