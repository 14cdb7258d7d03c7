"""Education communities (教联体): coverage against the policy targets, lists and detail."""
