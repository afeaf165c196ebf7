import ArgumentParser
import AsyncHTTPClient
import ConclaveCore
import ConclaveInference
import ConclaveOrchestrator
import ConclaveServer
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

    @Option(name: .long, help: "Sign a development token for this user of auth.users_file (e.g. u-employee) instead of --token.")
    var user: String?

    @Option(name: .long, help: "Configuration whose auth section signs the --user token.")
    var config: String?

    func run() async throws {
        var bearer = token
        if bearer == nil, let user { bearer = try await Eval.tokens(config: config)(user) }
        let client = ChatClient(baseURL: url, model: model, token: bearer)
        if let script {
            guard let text = try? String(contentsOfFile: script, encoding: .utf8) else {
                throw ValidationFailure("cannot read script '\(script)'")
            }
            let questions = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty && !$0.hasPrefix("#") }
            var conversation: String?
            for (index, question) in questions.enumerated() {
                Terminal.write("\n\u{1B}[1mTurn \(index + 1) — you:\u{1B}[0m \(question)\n")
                Terminal.write("\u{1B}[1mconclave:\u{1B}[0m ")
                let turn = try await client.send(question, conversation: conversation)
                conversation = turn.conversationID
                Terminal.write("\n")
                printDetails(turn, trace: true)
            }
            return
        }
        var conversation: String?
        Terminal.write("Conclave chat — \(model) at \(url). Empty line or Ctrl-D to quit.\n")
        while true {
            Terminal.write("\nyou> ")
            guard let line = readLine(), !line.trimmingCharacters(in: .whitespaces).isEmpty else { break }
            Terminal.write("conclave> ")
            do {
                let turn = try await client.send(line, conversation: conversation)
                conversation = turn.conversationID
                Terminal.write("\n")
                printDetails(turn, trace: trace)
            } catch {
                Terminal.write("\nerror: \(error)\n")
            }
        }
    }

    private func printDetails(_ turn: ChatClient.Turn, trace: Bool) {
        if turn.citations.isEmpty {
            Terminal.write("  (no citations)\n")
        }
        for citation in turn.citations {
            Terminal.write("  [\(citation.index)] \(citation.sourceID) — \(citation.title)\n")
        }
        if trace {
            let steps = turn.trace.map { step in
                "\(step.step)(\(step.role.rawValue)) \(String(format: "%.0f", step.milliseconds)) ms, "
                    + "\(step.usage.promptTokens)+\(step.usage.completionTokens) tok"
            }
            Terminal.write("  trace: " + steps.joined(separator: " → ") + "\n")
        }
    }
}

/// A minimal streaming client of Conclave's chat API, decoding the server's own wire types.
struct ChatClient {
    struct Turn {
        var conversationID: String?
        var text = ""
        var citations: [Citation] = []
        var trace: [StepTrace] = []
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
            let data = Data(try await response.body.collect(upTo: 1 << 20).readableBytesView)
            let message = (try? JSONDecoder().decode(OpenAIError.self, from: data))?.error.message ?? String(decoding: data, as: UTF8.self)
            throw ValidationFailure("server answered \(response.status.code): \(message)")
        }
        var turn = Turn(conversationID: response.headers.first(name: "X-Conclave-Conversation"))
        var splitter = SSELineSplitter()
        let decoder = JSONDecoder()
        for try await buffer in response.body {
            for line in splitter.append(buffer) where line.hasPrefix("data: ") {
                let payload = Data(line.dropFirst(6).utf8)
                if payload == Data("[DONE]".utf8) { continue }
                if let error = try? decoder.decode(OpenAIError.self, from: payload) {
                    throw ValidationFailure("server error: \(error.error.message)")
                }
                guard let chunk = try? decoder.decode(ChatCompletionChunk.self, from: payload) else { continue }
                turn.conversationID = chunk.conversationID
                if let text = chunk.choices.first?.delta.content, !text.isEmpty {
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
