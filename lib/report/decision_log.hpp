#pragma once
// The one line per message (and per refused connection) that an operator reads at 3 a.m.
// Peer-supplied strings are made printable and bounded (house rule 8).
#include <string>
#include <string_view>

#include "core/envelope.hpp"
#include "core/verdict.hpp"
namespace vigil::report {

enum class LogFormat { text, json };

// "4F1A2B: inbound action=add_header score=7.20/15.00 symbols=A(1.50),B(5.00) ip=192.0.2.1
//  helo=mx.example.net from=<a@example.net> rcpts=2 ms=3"
std::string format_decision(LogFormat format, const core::Envelope& env, const core::Verdict& verdict,
                            long ms);

// A refusal before end of message: at connect, HELO, MAIL or RCPT.
std::string format_early_decision(LogFormat format, const core::Envelope& env, std::string_view stage,
                                  std::string_view action, const core::SmtpReply& reply,
                                  std::string_view reason, std::string_view rcpt = {});

}  // namespace vigil::report
