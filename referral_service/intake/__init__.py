"""Intake: one path from a referring EHR's submission to a started referral, for every route (push, the
referrer's Task, poll, subscription): read, ask the EHR what the submission names, judge, start."""
