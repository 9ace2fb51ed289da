//! `ai-session decide` and `ai-session decisions`: record a decision before acting on it, set
//! its outcome by hand, list decisions, and see success rates and calibration (`decision.*`).

use std::process::ExitCode;

use ai_session_client::Selector;
use ai_session_protocol::decisions::{
    DecisionId, DecisionInfo, DecisionList, DecisionListParams, DecisionParams, DecisionStats,
    DecisionStatsParams, Outcome, OutcomeParams,
};
use ai_session_protocol::registry::{self as reg, Method as _};
use clap::{Args, Subcommand, ValueEnum};

use crate::commands::{connect, print_json};
use crate::error::CliError;

#[derive(Subcommand)]
pub enum DecideCommand {
    /// Record a decision (what, why, how sure): the commands then run in its session set its
    /// outcome. Prints its id. `decide outcome ID success|failure` sets the outcome by hand.
    Decide(DecideArgs),
    /// Decisions recorded: list, show one, success rates and calibration.
    Decisions {
        #[command(subcommand)]
        action: DecisionsAction,
        /// Print JSON with a stable shape.
        #[arg(long, global = true)]
        json: bool,
    },
}

#[derive(Args)]
pub struct DecideArgs {
    #[command(subcommand)]
    outcome: Option<OutcomeCommand>,
    /// What was decided, e.g. "run the failing test alone".
    decision: Option<String>,
    /// Why.
    #[arg(long, default_value = "")]
    rationale: String,
    /// How sure, from 0 to 1.
    #[arg(long)]
    confidence: Option<f64>,
    /// An option not taken (repeatable).
    #[arg(long = "alternative", value_name = "TEXT")]
    alternatives: Vec<String>,
    /// The task it belongs to.
    #[arg(long, value_name = "ID")]
    task: Option<String>,
    /// The session whose next commands decide its outcome.
    #[arg(short = 't', long = "target", value_name = "SESSION")]
    target: Option<String>,
    /// What sort of decision it is ("fix", "test-strategy" ...), for success rates by kind.
    #[arg(long)]
    kind: Option<String>,
    /// Print JSON with a stable shape.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum OutcomeCommand {
    /// Set a decision's outcome by hand (it then stops following the commands).
    Outcome {
        id: u64,
        outcome: Verdict,
        /// What happened.
        #[arg(long)]
        note: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Verdict {
    Success,
    Failure,
}

#[derive(Subcommand)]
pub enum DecisionsAction {
    /// List decisions, oldest first.
    Ls {
        #[arg(long)]
        agent: Option<String>,
        #[arg(short = 't', long = "target", value_name = "SESSION")]
        target: Option<String>,
        #[arg(long)]
        task: Option<String>,
        #[arg(long)]
        kind: Option<String>,
        /// The newest this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// One decision, with its outcome and linked commands.
    Show { id: u64 },
    /// Success rates by agent and by kind, and calibration: reliability bins and the Brier score.
    Stats {
        #[arg(long)]
        agent: Option<String>,
    },
}

pub(crate) async fn run(sel: &Selector, command: DecideCommand) -> Result<ExitCode, CliError> {
    let client = connect(sel, true).await?;
    match command {
        DecideCommand::Decide(a) => match a.outcome {
            Some(OutcomeCommand::Outcome { id, outcome, note }) => {
                let params = OutcomeParams {
                    id,
                    outcome: match outcome {
                        Verdict::Success => Outcome::Success,
                        Verdict::Failure => Outcome::Failure,
                    },
                    note,
                };
                let d: DecisionInfo = client.call(reg::DecisionOutcome::NAME, params).await?;
                show(&d, a.json)?;
            }
            None => {
                let (Some(decision), Some(confidence)) = (a.decision, a.confidence) else {
                    return Err(CliError::Local(
                        "decide needs the decision and --confidence: ai-session decide \"run the failing test alone\" --rationale \"...\" --confidence 0.7".into(),
                    ));
                };
                let params = DecisionParams {
                    decision,
                    rationale: a.rationale,
                    confidence,
                    alternatives: a.alternatives,
                    task: a.task,
                    target: a.target,
                    kind: a.kind,
                };
                let d: DecisionInfo = client.call(reg::DecisionRecord::NAME, params).await?;
                if a.json {
                    print_json(&d)?;
                } else {
                    println!("{}", d.id);
                }
            }
        },
        DecideCommand::Decisions { action, json } => decisions(&client, action, json).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn decisions(
    client: &ai_session_client::Client,
    action: DecisionsAction,
    json: bool,
) -> Result<(), CliError> {
    match action {
        DecisionsAction::Ls {
            agent,
            target,
            task,
            kind,
            limit,
        } => {
            let params = DecisionListParams {
                agent,
                target,
                task,
                kind,
                limit: Some(limit),
            };
            let l: DecisionList = client.call(reg::DecisionList::NAME, params).await?;
            if json {
                print_json(&l)?;
            } else {
                for d in &l.decisions {
                    println!("{}", line(d));
                }
            }
        }
        DecisionsAction::Show { id } => {
            let d: DecisionInfo = client
                .call(reg::DecisionShow::NAME, DecisionId { id })
                .await?;
            show(&d, json)?;
        }
        DecisionsAction::Stats { agent } => {
            let s: DecisionStats = client
                .call(reg::DecisionStats::NAME, DecisionStatsParams { agent })
                .await?;
            if json {
                print_json(&s)?;
            } else {
                print!("{}", render_stats(&s));
            }
        }
    }
    Ok(())
}

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Unknown => "unknown",
        Outcome::Success => "success",
        Outcome::Failure => "failure",
    }
}

fn line(d: &DecisionInfo) -> String {
    format!(
        "#{} {} (confidence {:.2}, {} after {} command(s){}) {}",
        d.id,
        outcome_name(d.outcome),
        d.confidence,
        if d.explicit {
            "set by hand"
        } else {
            "from commands"
        },
        d.execs,
        d.agent
            .as_deref()
            .map(|a| format!(", by {a}"))
            .unwrap_or_default(),
        d.decision
    )
}

fn show(d: &DecisionInfo, json: bool) -> Result<(), CliError> {
    if json {
        return print_json(d);
    }
    println!("{}", line(d));
    if !d.rationale.is_empty() {
        println!("  rationale: {}", d.rationale);
    }
    for a in &d.alternatives {
        println!("  alternative: {a}");
    }
    if let Some(s) = &d.session {
        println!("  session: {s}");
    }
    if let Some(k) = &d.kind {
        println!("  kind: {k}");
    }
    if let Some(t) = &d.task {
        println!("  task: {t}");
    }
    if let Some(n) = &d.note {
        println!("  note: {n}");
    }
    Ok(())
}

fn render_stats(s: &DecisionStats) -> String {
    let mut out = format!("{} decisions, {} with an outcome", s.decisions, s.decided);
    if let Some(b) = s.brier {
        out.push_str(&format!(", Brier score {b:.3} (0 is perfect)"));
    }
    out.push('\n');
    let groups = s
        .by_agent
        .iter()
        .map(|a| (format!("agent {}", a.agent), &a.tally))
        .chain(
            s.by_kind
                .iter()
                .map(|k| (format!("kind {}", k.kind), &k.tally)),
        );
    for (name, t) in groups {
        let rate = t
            .success_rate
            .map_or_else(|| "-".to_owned(), |r| format!("{:.0}%", r * 100.0));
        out.push_str(&format!(
            "  {name}: {} decisions, {} succeeded, {} failed, {} unknown, success rate {rate}, mean confidence {:.2}\n",
            t.decisions, t.success, t.failure, t.unknown, t.mean_confidence
        ));
    }
    for b in &s.bins {
        out.push_str(&format!(
            "  confidence {:.1}-{:.1}: {} decided, mean confidence {:.2}, succeeded {:.0}%\n",
            b.lower,
            b.upper,
            b.count,
            b.mean_confidence,
            b.success_rate * 100.0
        ));
    }
    out
}
