"""The agent's sensing and deciding workers: load cells, camera, decisions.

:func:`~edge.workers.build.add_sensing` builds them from the unit config and plugs
them into an :class:`~edge.agent.Agent`. The weight and camera workers leave what
they sensed in an :class:`~edge.workers.timeline.Inbox`; the decision worker groups
it into windows, decides them (model or rules), books stock and commits events.
"""
