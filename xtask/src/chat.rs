//! `cargo xtask chat`: the end user's side of the local lab — a terminal chat with the agent
//! over A2A. Tier-1 approval requests show as cards; questions from `ask_user` as prompts;
//! each call's line says what happened to it, and answers read as sentences and tables.

use std::io::{BufRead as _, Write as _};

use hitl_lab::lab::{self, LabState};
use hitl_scenes::a2a::{
    Chat, TurnEvent, TurnOutcome,
    hitl::{self, Activity, Decision, Pause},
    outcome::{CallOutcome, Readable},
};

use crate::flags::ChatArgs;

pub async fn run(args: &ChatArgs) -> anyhow::Result<()> {
    let state = LabState::require(&lab::default_dir())?;
    let agent = match hitl_lab::agents::AgentSelection::from(args.agent) {
        hitl_lab::agents::AgentSelection::One(agent) => agent,
        hitl_lab::agents::AgentSelection::All => {
            anyhow::bail!("chat talks to one agent: --agent declarative or --agent langgraph")
        }
    };
    let mut client = hitl_scenes::scene::run::chat_client(&state, agent, &args.user)?;
    let card = client.card().await?;
    if card.declares(hitl::HITL_V1) {
        client = client.with_header("A2A-Extensions", hitl::HITL_V1);
    }
    println!(
        "chatting with {} (the {agent} agent) as {} (model: {}). Empty line or Ctrl-D to quit.",
        agent.resource_name(),
        args.user,
        state.model
    );
    println!(
        "try: \"What's in the orders table?\", \"Truncate the orders table.\", \"Truncate a \
         table.\", \"Apply migration v3.\""
    );
    println!(
        "(a migration waits for a platform reviewer at {})\n",
        state.urls.reviewer_ui
    );
    if let Some(url) = &state.urls.scripted_model {
        // A scene may have left its own script loaded.
        hitl_lab::components::scripted_model::Control::new(url)
            .load(&hitl_scenes::scene::parse::chat_script()?)
            .await?;
    }
    let mut chat = Chat::new(client);
    let _parks = crate::chat_parks::announce(&state, &args.user);
    while let Some(text) = prompt("you › ")? {
        let mut outcome = chat.say(&text, show).await?;
        loop {
            match outcome.pause.take() {
                Some(Pause::Approval(requests)) => {
                    let request = &requests[0];
                    card_for(request);
                    let decision = ask_decision()?;
                    outcome = match chat.decide(request, &decision, show).await {
                        Ok(outcome) => outcome,
                        Err(e) => {
                            println!("!! {e}");
                            break;
                        }
                    };
                    println!("   (the agent took the decision)");
                }
                Some(Pause::Question(question)) => {
                    let mut answers = Vec::new();
                    for q in &question.questions {
                        let choices = if q.choices.is_empty() {
                            String::new()
                        } else {
                            format!(" [{}]", q.choices.join(" / "))
                        };
                        let answer =
                            prompt(&format!("agent asks: {}{choices}\nyou › ", q.question))?
                                .unwrap_or_default();
                        answers.push(answer);
                    }
                    outcome = chat.answer(&answers, show).await?;
                }
                None => break,
            }
        }
        finish(&outcome);
    }
    Ok(())
}

fn show(event: &TurnEvent) {
    match event {
        TurnEvent::Activity(Activity::Call { tool, args, .. }) if tool != hitl::ASK_USER => {
            println!("   … calls {tool} {args}")
        }
        TurnEvent::Activity(Activity::Result {
            tool,
            text,
            is_error,
            ..
        }) if tool != hitl::ASK_USER => {
            println!("   … {tool} {}", CallOutcome::of(text, *is_error).line())
        }
        TurnEvent::Said(text) => said(text),
        _ => {}
    }
}

/// What the agent said, as a person reads it: the sentence, then any rows as an aligned table.
fn said(text: &str) {
    let readable = Readable::of(text);
    println!("agent › {}", readable.sentence);
    let Some(table) = readable.table else {
        return;
    };
    let widths: Vec<usize> = (0..table.columns.len())
        .map(|i| {
            std::iter::once(&table.columns[i])
                .chain(table.rows.iter().filter_map(|r| r.get(i)))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("        {}", padded.join("  ").trim_end());
    };
    line(&table.columns);
    for row in &table.rows {
        line(row);
    }
}

fn finish(outcome: &TurnOutcome) {
    if outcome.state.is_terminal() && outcome.state != hitl_scenes::a2a::types::TaskState::Completed
    {
        println!("   (the task ended {:?})", outcome.state);
    }
    println!();
}

fn card_for(request: &hitl::ApprovalRequest) {
    let args = serde_json::to_string_pretty(&request.args).unwrap_or_default();
    println!("┌─ approval needed ───────────────────────────────");
    println!("│ tool  {}", request.tool);
    for (i, line) in args.lines().enumerate() {
        println!("│ {}  {line}", if i == 0 { "args" } else { "    " });
    }
    if !request.hint.is_empty() {
        println!("│ why   {}", request.hint);
    }
    println!("└─────────────────────────────────────────────────");
}

fn ask_decision() -> anyhow::Result<Decision> {
    loop {
        let Some(answer) = prompt("approve or reject? [a/r] › ")? else {
            return Ok(Decision::Reject {
                reason: "the user left the chat".into(),
            });
        };
        match answer.to_lowercase().as_str() {
            "a" | "approve" | "y" | "yes" => return Ok(Decision::Approve),
            "r" | "reject" | "n" | "no" => {
                let reason = prompt("reason (the agent sees it) › ")?.unwrap_or_default();
                return Ok(Decision::Reject { reason });
            }
            _ => println!("type a to approve, r to reject"),
        }
    }
}

/// A line from the user, or `None` on an empty line or end of input.
fn prompt(text: &str) -> anyhow::Result<Option<String>> {
    print!("{text}");
    std::io::stdout().flush()?;
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let line = line.trim().to_owned();
    Ok((!line.is_empty()).then_some(line))
}
